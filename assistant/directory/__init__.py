"""Company sign-in: LDAP / Active Directory accounts whose groups decide which collections they read.

``ldap`` talks to the directory; ``service`` signs people in and keeps their Enclave accounts
and group memberships in step with it; ``build_directory_service`` wires the two.
"""

from __future__ import annotations

from assistant.accounts import AccountService
from assistant.audit import AuditLog
from assistant.directory.ldap import DirectoryEntry, LdapDirectory
from assistant.directory.oidc import Flow, OidcProvider
from assistant.directory.service import Directory, DirectoryService, SyncReport
from assistant.settings import DirectorySettings, OidcSettings
from storage.account_store import AccountStore

__all__ = ["Directory", "DirectoryEntry", "DirectoryService", "Flow", "LdapDirectory", "OidcProvider", "SyncReport",
           "build_directory_service"]


def build_directory_service(settings: DirectorySettings, store: AccountStore, accounts: AccountService,
                            audit: AuditLog, oidc: OidcSettings | None = None) -> DirectoryService:
    """The sign-in service over the configured directory and provider (nothing connects until someone signs in)."""
    provider = OidcProvider(oidc) if oidc is not None and oidc.enabled else None
    return DirectoryService(settings, LdapDirectory(settings), store, accounts, audit, provider)
