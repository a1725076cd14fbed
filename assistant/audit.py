"""The audit log: who signed in, ingested, changed permissions or asked what, and when."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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

    def record(self, actor: Principal | str, action: str, target: str = "", **detail: Any) -> None:
        """Append one event; ``actor`` is a principal or, before sign-in, the name that was tried."""
        name = actor.username if isinstance(actor, Principal) else actor
        self.store.add_event(name[:100], action, target, detail)

    def events(self, actor: Principal, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        """The newest events first (admins only)."""
        require_admin(actor)
        return self.store.events(limit, action)
