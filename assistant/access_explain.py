"""Why a user reads what they read: each effective collection with the groups and grants that give it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from assistant.audit import Principal, require_admin
from assistant.errors import NotFoundError
from storage.account_store import AccountStore, Membership
from storage.documents import DocumentStore

Reason = Membership
"""One path to a collection: membership of ``group``, made by ``source`` (``manual``: an admin; ``directory``,
then ``directory_group`` made it)."""


@dataclass(frozen=True)
class CollectionAccess:
    """A collection the user reads, and every reason they do."""

    collection: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class AccessExplanation:
    """A user's effective read access, as ``run.py users explain`` and the admin tab show it."""

    username: str
    role: str
    active: bool
    source: str
    """``local`` or ``directory``."""
    groups: tuple[Reason, ...]
    collections: tuple[CollectionAccess, ...]
    note: str
    """In words: why the list is what it is (an admin reads everything; a disabled account reads nothing)."""

    def to_json(self) -> dict[str, object]:
        """The explanation as plain JSON types."""
        return asdict(self)


def explain_access(store: AccountStore, documents: DocumentStore, actor: Principal,
                   username: str) -> AccessExplanation:
    """Which collections ``username`` reads and why (admins only)."""
    require_admin(actor)
    user = store.user(username)
    if user is None:
        raise NotFoundError(f"there is no user named {username!r}")
    groups = tuple(store.memberships(user.id))
    every = sorted(set(documents.collections().values()))
    if not user.active:
        why = "disabled by the directory sync" if user.directory_disabled else "disabled by an admin"
        return AccessExplanation(user.username, user.role, False, user.source, groups, (),
                                 f"reads nothing: the account is {why}")
    if user.role == "admin":
        every_one = tuple(CollectionAccess(name, (Reason("(admin role)", "role"),)) for name in every)
        return AccessExplanation(user.username, user.role, True, user.source, groups, every_one,
                                 "reads every collection: admins do")
    paths: dict[str, list[Reason]] = {}
    for path in store.grant_paths(user.id):
        if path.collection in every:
            paths.setdefault(path.collection, []).append(Reason(path.group, path.source, path.directory_group))
    collections = tuple(CollectionAccess(name, tuple(reasons)) for name, reasons in sorted(paths.items()))
    note = "reads the collections granted to their groups" if collections else "reads nothing: no group of theirs " \
           "is granted a collection"
    return AccessExplanation(user.username, user.role, True, user.source, groups, collections, note)
