"""The audit log's events as typed records: one frozen dataclass per kind, listed in ``EVENT_TYPES``.

An event is stored as the rows always were: its ``action`` name, a ``target`` (the field the
class names in ``TARGET``) and its other fields as JSON details. A field left at its default is
not stored, so rows written before these classes read back as the same events.

A kind is declared as ``class SignIn(_AccountEvent, action="sign_in")`` with its fields: every subclass
of ``AuditEvent`` is made a frozen dataclass, so the shape lives once here.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self, get_type_hints

from typing_extensions import dataclass_transform

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport


@dataclass_transform(frozen_default=True)
@dataclass(frozen=True)
class AuditEvent:
    """Something an admin may later want to know happened."""

    action: ClassVar[str]
    """The stored action name, which the Activity page filters on."""
    TARGET: ClassVar[str]
    """The field stored as the row's target; the rest go into its details."""

    def __init_subclass__(cls, *, action: str = "", target: str = "", **kwargs: Any) -> None:
        """Make the kind a frozen dataclass, naming its stored action and target field (or inheriting them)."""
        super().__init_subclass__(**kwargs)
        if action:
            cls.action = action
        if target:
            cls.TARGET = target
        dataclass(frozen=True)(cls)

    @property
    def target(self) -> str:
        """What the event happened to, as stored."""
        return str(getattr(self, self.TARGET))

    def detail(self) -> dict[str, Any]:
        """The JSON details stored beside the action and target."""
        return {
            f.name: getattr(self, f.name) for f in fields(self)
            if f.name != self.TARGET and (f.default is MISSING or getattr(self, f.name) != f.default)
        }

    @classmethod
    def from_stored(cls, target: str, detail: dict[str, Any]) -> Self:
        """The event back from a stored row; raises TypeError or ValueError when the row does not fit."""
        names = {f.name for f in fields(cls)} - {cls.TARGET}
        cast = int if get_type_hints(cls)[cls.TARGET] is int else str
        return cls(**{cls.TARGET: cast(target)}, **{k: v for k, v in detail.items() if k in names})


# --- accounts and sign-in ---------------------------------------------------------------------


class _AccountEvent(AuditEvent, target="username"):
    """Something that happened to one account (or to "(unknown user)" for names that are none)."""

    username: str


class SignIn(_AccountEvent, action="sign_in"):
    client: str
    method: str = "local"
    """``local`` (a password kept here) or ``directory`` (checked by the company directory)."""


class SignInFailed(_AccountEvent, action="sign_in_failed"):
    """A wrong password, or a name that is no account (``unknown_user``; the name typed is never stored)."""

    client: str
    unknown_user: bool = False
    method: str = "local"


class SignInRefused(_AccountEvent, action="sign_in_refused"):
    """Refused before the password was checked: the account is locked or the client throttled."""

    reason: str
    client: str


class AccountLocked(_AccountEvent, action="account_locked"):
    failures: int
    client: str


class SignOut(_AccountEvent, action="sign_out"): ...


class UserCreated(_AccountEvent, action="user_created"):
    role: str
    first_start: bool = False
    source: str = "local"


class PasswordChanged(_AccountEvent, action="password_changed"): ...


class RoleChanged(_AccountEvent, action="role_changed"):
    role: str


class UserEnabled(_AccountEvent, action="user_enabled"): ...


class UserDisabled(_AccountEvent, action="user_disabled"): ...


# --- the company directory --------------------------------------------------------------------


class DirectoryUserDisabled(_AccountEvent, action="directory_user_disabled"):
    """The directory disabled or no longer has the account: its sessions and API tokens stopped working."""

    reason: str


class DirectoryUserEnabled(_AccountEvent, action="directory_user_enabled"):
    """An account the directory had disabled signed in again after the directory enabled it."""


class DirectoryRoleChanged(_AccountEvent, action="directory_role_changed"):
    role: str


class DirectorySynced(AuditEvent, action="directory_synced", target="server"):
    """A periodic or requested sync finished: how many accounts it looked at and how many it changed."""

    server: str
    accounts: int
    changed: int


class DirectorySyncFailed(AuditEvent, action="directory_sync_failed", target="server"):
    """The directory could not be reached or refused the service account: nobody's access changed."""

    server: str
    error: str


# --- collections, groups and grants -----------------------------------------------------------


class CollectionCreated(AuditEvent, action="collection_created", target="collection"):
    collection: str


class _GroupEvent(AuditEvent, target="group"):
    group: str


class GroupCreated(_GroupEvent, action="group_created"): ...


class GroupDeleted(_GroupEvent, action="group_deleted"): ...


class GroupMemberAdded(_GroupEvent, action="group_member_added"):
    user: str
    directory_group: str = ""
    """The directory group that made the membership (empty: an admin did)."""


class GroupMemberRemoved(_GroupEvent, action="group_member_removed"):
    user: str
    directory_group: str = ""


class _GrantEvent(AuditEvent, target="collection"):
    collection: str
    group: str


class GrantAdded(_GrantEvent, action="grant_added"): ...


class GrantRevoked(_GrantEvent, action="grant_revoked"): ...


# --- API tokens -------------------------------------------------------------------------------


class _TokenEvent(AuditEvent, target="owner"):
    owner: str
    token: int
    name: str


class ApiTokenCreated(_TokenEvent, action="api_token_created"):
    expires_days: int | None


class ApiTokenRevoked(_TokenEvent, action="api_token_revoked"): ...


# --- chats ------------------------------------------------------------------------------------


class ChatDeleted(AuditEvent, action="chat_deleted", target="chat_id"):
    chat_id: int


class QuestionAsked(AuditEvent, action="question_asked", target="chat_id"):
    chat_id: int
    question: str
    collections: list[str]


class Feedback(AuditEvent, action="feedback", target="message_id"):
    message_id: int
    helpful: bool


# --- ingestion and documents ------------------------------------------------------------------


class FilesUploaded(AuditEvent, action="files_uploaded", target="collection"):
    collection: str
    files: list[str]


class IngestStarted(AuditEvent, action="ingest_started", target="collection"):
    collection: str
    folder: str
    sync: bool
    job: int


class IngestFinished(AuditEvent, action="ingest_finished", target="collection"):
    collection: str
    job: int
    added: int
    updated: int
    unchanged: int
    removed: int
    renamed: int
    documents: int
    chunks: int
    seconds: float
    failed: int

    @classmethod
    def of(cls, collection: str, job: int, report: IngestReport) -> IngestFinished:
        """The event for a finished run; ``failed`` counts the files, which the job itself lists."""
        return cls(collection, job, report.added, report.updated, report.unchanged, report.removed, report.renamed,
                   report.documents, report.chunks, round(report.seconds, 3), len(report.failed))


class _JobProblem(AuditEvent, target="subject"):
    subject: str
    """The collection, or "job N" when the job's worker died and the job is all that is known."""
    job: int
    error: str


class IngestFailed(_JobProblem, action="ingest_failed"):
    """A run that stopped with an error, or whose worker died too often."""



class IngestRequeued(_JobProblem, action="ingest_requeued"):
    """A run whose worker died, queued again for another."""



class IngestRootAdded(AuditEvent, action="ingest_root_added", target="folder"):
    """A server folder admins may now ingest from (with its subfolders), in every process."""

    folder: str


class IngestRootRemoved(AuditEvent, action="ingest_root_removed", target="folder"):
    """A server folder admins may no longer ingest from; what was ingested from it stays."""

    folder: str


class DocumentRemoved(AuditEvent, action="document_removed", target="path"):
    path: str
    collection: str


# --- sources ---------------------------------------------------------------------------------


class SourceAdded(AuditEvent, action="source_added", target="source"):
    source: str
    folder: str
    collection: str
    schedule: str


class SourceChanged(AuditEvent, action="source_changed", target="source"):
    """Paused, resumed, or its held removals confirmed (``change``)."""

    source: str
    change: str


class SourceRemoved(AuditEvent, action="source_removed", target="source"):
    source: str


class SourceRunHeld(AuditEvent, action="source_run_held", target="folder"):
    """A run that removed nothing, waiting for an admin, with the reason shown to admins."""

    folder: str
    job: int
    reason: str


# --- the quality loop -------------------------------------------------------------------------


class ExpectedAnswerSaved(AuditEvent, action="expected_answer_saved", target="message_id"):
    """An admin wrote the answer expected to a refused or marked-down question (or marked it not answerable)."""

    message_id: int
    collection: str
    answerable: bool


class QualitySetExported(AuditEvent, action="quality_exported", target="folder"):
    """The expected answers written out as a QA set (``collection`` None: every collection's)."""

    folder: str
    collection: str | None
    questions: int


# --- settings ---------------------------------------------------------------------------------


class SettingsChanged(AuditEvent, action="settings_changed", target="section"):
    """Settings an admin changed; the new values are the stored details, one per setting."""

    section: str
    values: dict[str, Any]

    def detail(self) -> dict[str, Any]:
        """The new values themselves, as the rows always held them."""
        return dict(self.values)

    @classmethod
    def from_stored(cls, target: str, detail: dict[str, Any]) -> Self:
        """The event back from a stored row."""
        return cls(target, dict(detail))


class ModelChosen(AuditEvent, action="model_chosen", target="model"):
    """An admin switched the answering model to a catalogue model (`run.py models use`, the Models tab)."""

    model: str
    backend: str
    source: str
    location: str
    sha256: str | None = None


class ModelAdded(AuditEvent, action="model_added", target="model"):
    """An admin copied a GGUF model into DATA_DIR/models (`run.py models add`)."""

    model: str
    size_bytes: int | None = None
    sha256: str | None = None


EVENT_TYPES: dict[str, type[AuditEvent]] = {kind.action: kind for kind in (
    SignIn, SignInFailed, SignInRefused, AccountLocked, SignOut, UserCreated, PasswordChanged, RoleChanged,
    UserEnabled, UserDisabled, CollectionCreated, GroupCreated, GroupDeleted, GroupMemberAdded,
    GroupMemberRemoved, GrantAdded, GrantRevoked, ApiTokenCreated, ApiTokenRevoked, ChatDeleted, QuestionAsked,
    Feedback, FilesUploaded, IngestStarted, IngestFinished, IngestFailed, IngestRequeued, DocumentRemoved,
    SettingsChanged, ModelChosen, ModelAdded, ExpectedAnswerSaved, QualitySetExported,
    SourceAdded, SourceChanged, SourceRemoved, SourceRunHeld, IngestRootAdded, IngestRootRemoved,
    DirectoryUserDisabled, DirectoryUserEnabled, DirectoryRoleChanged, DirectorySynced, DirectorySyncFailed,
)}
"""Every kind of event, by its stored action name."""


@dataclass(frozen=True)
class AuditEntry:
    """One row of the audit log as an admin reads it: when, who, and the event as stored."""

    at: datetime
    user: str
    action: str
    target: str
    detail: dict[str, Any]

    @property
    def event(self) -> AuditEvent | None:
        """The typed event; None for a row this version cannot read (an unknown action or other fields)."""
        kind = EVENT_TYPES.get(self.action)
        if kind is None:
            return None
        try:
            return kind.from_stored(self.target, self.detail)
        except (TypeError, ValueError):  # an older row: the Activity page still shows it as stored
            return None

    def as_row(self) -> dict[str, Any]:
        """The row as the Activity page's table shows it."""
        return {"at": self.at, "user": self.user, "action": self.action, "target": self.target,
                "detail": self.detail}
