"""Who may read which collection: groups, their members, and read grants of collections to groups.

Admins read every collection. A user reads the collections granted to any of their groups,
and nothing else: every service that shows documents, passages or answers asks here first.
"""

from __future__ import annotations

import re

from assistant import audit_events
from assistant.access_explain import AccessExplanation, explain_access
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput, NotFoundError, PermissionDenied
from storage.account_store import AccountStore
from storage.documents import DocumentStore

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")


def _check_name(kind: str, name: str) -> str:
    name = name.strip()
    if not NAME_RE.match(name):
        raise InvalidInput(f"{kind} names are letters, digits, spaces and . _ - (at most 100)")
    return name


class AccessService:
    """Answers "may this principal read that collection?" and lets admins change the answer."""

    def __init__(self, store: AccountStore, documents: DocumentStore, audit: AuditLog) -> None:
        self.store = store
        self.documents = documents
        self.audit = audit

    # reading

    def readable(self, principal: Principal) -> list[str]:
        """Names of the collections the principal may read, sorted."""
        every = set(self.documents.collections().values())
        if principal.is_admin:
            return sorted(every)
        if principal.id is None:
            return []
        return sorted(self.store.readable_collections(principal.id) & every)

    def can_read(self, principal: Principal, collection: str) -> bool:
        """Whether the principal may read a collection."""
        return collection in self.readable(principal)

    def choose(self, principal: Principal, requested: list[str] | None) -> list[str]:
        """The collections to search: all readable ones when ``requested`` is None, else exactly those.

        Raises:
            PermissionDenied: a requested collection is not readable (or does not exist).
        """
        return choose_among(self.readable(principal), requested)

    def explain(self, actor: Principal, username: str) -> AccessExplanation:
        """Which collections a user reads and why: through which group, made by an admin or the directory."""
        return explain_access(self.store, self.documents, actor, username)

    # administration

    def groups(self, actor: Principal) -> list[dict[str, object]]:
        """Every group with members and readable collections (admins only)."""
        require_admin(actor)
        return self.store.groups()

    def create_collection(self, actor: Principal, name: str) -> None:
        """Create an empty collection (admins only)."""
        require_admin(actor)
        name = _check_name("collection", name)
        self.documents.collection_id(name, create=True)
        self.audit.record(actor, audit_events.CollectionCreated(name))

    def create_group(self, actor: Principal, name: str) -> None:
        """Create a group (admins only)."""
        require_admin(actor)
        name = _check_name("group", name)
        if self.store.group_id(name) is not None:
            raise InvalidInput(f"there is already a group named {name!r}")
        self.store.group_id(name, create=True)
        self.audit.record(actor, audit_events.GroupCreated(name))

    def delete_group(self, actor: Principal, name: str) -> None:
        """Delete a group, its memberships and grants (admins only)."""
        require_admin(actor)
        self.store.delete_group(self._group(name))
        self.audit.record(actor, audit_events.GroupDeleted(name))

    def set_member(self, actor: Principal, username: str, group: str, member: bool = True) -> None:
        """Add a user to a group, or take them out (admins only)."""
        require_admin(actor)
        user = self.store.user(username)
        if user is None:
            raise NotFoundError(f"there is no user named {username!r}")
        self.store.set_member(self._group(group), user.id, member)
        change = audit_events.GroupMemberAdded if member else audit_events.GroupMemberRemoved
        self.audit.record(actor, change(group, user=username))

    def set_grant(self, actor: Principal, group: str, collection: str, granted: bool = True) -> None:
        """Let a group read a collection, or stop it (admins only)."""
        require_admin(actor)
        collection_id = self.documents.collection_id(collection)
        if collection_id is None:
            raise NotFoundError(f"there is no collection named {collection!r}")
        self.store.set_grant(collection_id, self._group(group), granted)
        change = audit_events.GrantAdded if granted else audit_events.GrantRevoked
        self.audit.record(actor, change(collection, group=group))

    def _group(self, name: str) -> int:
        found = self.store.group_id(name)
        if found is None:
            raise NotFoundError(f"there is no group named {name!r}")
        return found


def choose_among(readable: list[str], requested: list[str] | None) -> list[str]:
    """``AccessService.choose`` over collections already known to be readable (read once for a question)."""
    if requested is None:
        return readable
    refused = [name for name in requested if name not in readable]
    if refused:
        raise PermissionDenied(f"you may not read collection {refused[0]!r}")
    return list(dict.fromkeys(requested))


def require_reader(access: AccessService, principal: Principal, collection: str) -> None:
    """Raise PermissionDenied, naming nothing, unless the principal may read ``collection``."""
    if not access.can_read(principal, collection):
        raise PermissionDenied("there is no such document, or you may not read it")
