"""The audit log's events as typed records: one frozen dataclass per kind, listed in ``EVENT_TYPES``.

An event is stored as the rows always were: its ``action`` name, a ``target`` (the field the
class names in ``TARGET``) and its other fields as JSON details. A field left at its default is
not stored, so rows written before these classes read back as the same events.
"""

from __future__ import annotations

from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self, get_type_hints

if TYPE_CHECKING:
    from ingest.pipeline import IngestReport


@dataclass(frozen=True)
class AuditEvent:
    """Something an admin may later want to know happened."""

    action: ClassVar[str]
    """The stored action name, which the Activity page filters on."""
    TARGET: ClassVar[str]
    """The field stored as the row's target; the rest go into its details."""

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


@dataclass(frozen=True)
class SignIn(AuditEvent):
    action = "sign_in"
    TARGET = "username"
    username: str
    client: str


@dataclass(frozen=True)
class SignInFailed(AuditEvent):
    """A wrong password, or a name that is no account (``unknown_user``; the name typed is never stored)."""

    action = "sign_in_failed"
    TARGET = "username"
    username: str
    client: str
    unknown_user: bool = False


@dataclass(frozen=True)
class SignInRefused(AuditEvent):
    """Refused before the password was checked: the account is locked or the client throttled."""

    action = "sign_in_refused"
    TARGET = "username"
    username: str
    reason: str
    client: str


@dataclass(frozen=True)
class AccountLocked(AuditEvent):
    action = "account_locked"
    TARGET = "username"
    username: str
    failures: int
    client: str


@dataclass(frozen=True)
class SignOut(AuditEvent):
    action = "sign_out"
    TARGET = "username"
    username: str


@dataclass(frozen=True)
class UserCreated(AuditEvent):
    action = "user_created"
    TARGET = "username"
    username: str
    role: str
    first_start: bool = False


@dataclass(frozen=True)
class PasswordChanged(AuditEvent):
    action = "password_changed"
    TARGET = "username"
    username: str


@dataclass(frozen=True)
class RoleChanged(AuditEvent):
    action = "role_changed"
    TARGET = "username"
    username: str
    role: str


@dataclass(frozen=True)
class UserEnabled(AuditEvent):
    action = "user_enabled"
    TARGET = "username"
    username: str


@dataclass(frozen=True)
class UserDisabled(AuditEvent):
    action = "user_disabled"
    TARGET = "username"
    username: str


# --- collections, groups and grants -----------------------------------------------------------


@dataclass(frozen=True)
class CollectionCreated(AuditEvent):
    action = "collection_created"
    TARGET = "collection"
    collection: str


@dataclass(frozen=True)
class GroupCreated(AuditEvent):
    action = "group_created"
    TARGET = "group"
    group: str


@dataclass(frozen=True)
class GroupDeleted(AuditEvent):
    action = "group_deleted"
    TARGET = "group"
    group: str


@dataclass(frozen=True)
class GroupMemberAdded(AuditEvent):
    action = "group_member_added"
    TARGET = "group"
    group: str
    user: str


@dataclass(frozen=True)
class GroupMemberRemoved(AuditEvent):
    action = "group_member_removed"
    TARGET = "group"
    group: str
    user: str


@dataclass(frozen=True)
class GrantAdded(AuditEvent):
    action = "grant_added"
    TARGET = "collection"
    collection: str
    group: str


@dataclass(frozen=True)
class GrantRevoked(AuditEvent):
    action = "grant_revoked"
    TARGET = "collection"
    collection: str
    group: str


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ApiTokenCreated(AuditEvent):
    action = "api_token_created"
    TARGET = "owner"
    owner: str
    token: int
    name: str
    expires_days: int | None


@dataclass(frozen=True)
class ApiTokenRevoked(AuditEvent):
    action = "api_token_revoked"
    TARGET = "owner"
    owner: str
    token: int
    name: str


# --- chats ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChatDeleted(AuditEvent):
    action = "chat_deleted"
    TARGET = "chat_id"
    chat_id: int


@dataclass(frozen=True)
class QuestionAsked(AuditEvent):
    action = "question_asked"
    TARGET = "chat_id"
    chat_id: int
    question: str
    collections: list[str]


@dataclass(frozen=True)
class Feedback(AuditEvent):
    action = "feedback"
    TARGET = "message_id"
    message_id: int
    helpful: bool


# --- ingestion and documents ------------------------------------------------------------------


@dataclass(frozen=True)
class FilesUploaded(AuditEvent):
    action = "files_uploaded"
    TARGET = "collection"
    collection: str
    files: list[str]


@dataclass(frozen=True)
class IngestStarted(AuditEvent):
    action = "ingest_started"
    TARGET = "collection"
    collection: str
    folder: str
    sync: bool
    job: int


@dataclass(frozen=True)
class IngestFinished(AuditEvent):
    action = "ingest_finished"
    TARGET = "collection"
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


@dataclass(frozen=True)
class IngestFailed(AuditEvent):
    """A run that stopped with an error, or whose worker died too often (``subject`` is then "job N")."""

    action = "ingest_failed"
    TARGET = "subject"
    subject: str
    job: int
    error: str


@dataclass(frozen=True)
class IngestRequeued(AuditEvent):
    """A run whose worker died, queued again for another (``subject`` is "job N")."""

    action = "ingest_requeued"
    TARGET = "subject"
    subject: str
    job: int
    error: str


@dataclass(frozen=True)
class DocumentRemoved(AuditEvent):
    action = "document_removed"
    TARGET = "path"
    path: str
    collection: str


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SettingsChanged(AuditEvent):
    """Settings an admin changed; the new values are the stored details, one per setting."""

    action = "settings_changed"
    TARGET = "section"
    section: str
    values: dict[str, Any]

    def detail(self) -> dict[str, Any]:
        """The new values themselves, as the rows always held them."""
        return dict(self.values)

    @classmethod
    def from_stored(cls, target: str, detail: dict[str, Any]) -> Self:
        """The event back from a stored row."""
        return cls(target, dict(detail))


EVENT_TYPES: dict[str, type[AuditEvent]] = {kind.action: kind for kind in (
    SignIn, SignInFailed, SignInRefused, AccountLocked, SignOut, UserCreated, PasswordChanged, RoleChanged,
    UserEnabled, UserDisabled, CollectionCreated, GroupCreated, GroupDeleted, GroupMemberAdded,
    GroupMemberRemoved, GrantAdded, GrantRevoked, ApiTokenCreated, ApiTokenRevoked, ChatDeleted, QuestionAsked,
    Feedback, FilesUploaded, IngestStarted, IngestFinished, IngestFailed, IngestRequeued, DocumentRemoved,
    SettingsChanged,
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
