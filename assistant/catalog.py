"""Listing documents for readers: the documents of the collections a principal may read, nothing else.

The web app's viewer opens one document at a time through ``Library``; tools calling the HTTP
API also need to list what they may open. The rule is ``AccessService.choose``'s, not a copy.
"""

from __future__ import annotations

from assistant.access import AccessService
from assistant.audit import Principal
from storage.library import DocumentRecord, LibraryStore


class Catalog:
    """Documents of readable collections."""

    def __init__(self, store: LibraryStore, access: AccessService) -> None:
        self.store = store
        self.access = access

    def documents(self, principal: Principal, collection: str | None = None) -> list[DocumentRecord]:
        """Documents of one readable collection, or of every readable one, by collection and path.

        Raises:
            PermissionDenied: ``collection`` is not one the principal may read (or does not exist).
        """
        chosen = self.access.choose(principal, [collection] if collection is not None else None)
        return [doc for name in sorted(chosen) for doc in self.store.documents(name)]
