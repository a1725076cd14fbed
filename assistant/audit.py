"""The audit log: who signed in, ingested, changed permissions or asked what, and when.

Events are the typed records of ``assistant.audit_events``.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.audit_events import AuditEntry, AuditEvent
from assistant.errors import PermissionDenied
from storage.account_store import AccountStore


@dataclass(frozen=True)
class Principal:
    """Who is acting: a signed-in user, or the server's own command line (``SYSTEM``)."""

    id: int | None
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        """Whether the principal may administer users, collections and ingestion."""
        return self.role == "admin"


SYSTEM = Principal(None, "cli", "admin")
"""The command line on the server: whoever runs it already holds the database, so it acts as admin."""


def require_admin(actor: Principal) -> None:
    """Raise PermissionDenied unless ``actor`` is an admin."""
    if not actor.is_admin:
        raise PermissionDenied("only administrators may do this")


class AuditLog:
    """Appends events and lets admins read them."""

    def __init__(self, store: AccountStore) -> None:
        self.store = store

    def record(self, actor: Principal | str, event: AuditEvent) -> None:
        """Append one event; ``actor`` is a principal, or "system", or before sign-in the account tried."""
        name = actor.username if isinstance(actor, Principal) else actor
        self.store.add_event(name[:100], event.action, event.target, event.detail())

    def events(self, actor: Principal, limit: int = 200, action: str | None = None) -> list[AuditEntry]:
        """The newest events first, of one ``action`` when given (admins only)."""
        require_admin(actor)
        return [AuditEntry(**row) for row in self.store.events(limit, action)]
