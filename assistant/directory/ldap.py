"""Talking to an LDAP / Active Directory server with ldap3: find a user, check their password, list their groups.

Every connection is encrypted (LDAPS, or StartTLS before any bind) unless ``directory.allow_plain``
says otherwise, and the server's certificate is always checked. Searches run as the service
account; a password is checked by a simple bind as the user's own entry, on its own connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from assistant.errors import ConfigError, DirectoryUnavailable, SignInFailed
from assistant.settings import DirectorySettings

WRONG_PASSWORD = "wrong user name or password"
UNREACHABLE = "the company directory cannot be reached right now: try again in a few minutes (admins can still " \
              "sign in with a local account)"
MAX_NESTING = 10  # group-in-group levels followed; a cycle or a deeper tree stops here


@dataclass(frozen=True)
class DirectoryEntry:
    """A person as the directory describes them."""

    dn: str
    username: str
    name: str
    email: str
    groups: tuple[str, ...]
    """Names of every group they belong to, directly or (with nested groups) through another group."""
    disabled: bool


def _ldap3() -> Any:
    try:
        import ldap3
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise ConfigError("directory sign-in needs the ldap3 package: pip install ldap3") from exc
    return ldap3


def _first(entry: dict[str, Any], attribute: str) -> str:
    value = entry.get(attribute)
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value or "")


def _rdn_value(dn: str) -> str:
    """``Finance`` from ``cn=Finance,ou=groups,dc=example,dc=org``."""
    from ldap3.core.exceptions import LDAPException
    from ldap3.utils.dn import parse_dn

    try:
        return str(parse_dn(dn)[0][1])
    except (IndexError, LDAPException):
        return dn


class LdapDirectory:
    """The company directory at ``directory.url``."""

    def __init__(self, settings: DirectorySettings) -> None:
        self.settings = settings

    @property
    def server_label(self) -> str:
        """The server, as the audit log names it."""
        return self.settings.url

    def authenticate(self, username: str, password: str) -> DirectoryEntry:
        """The user's entry once the directory accepted their password.

        Raises:
            SignInFailed: no such user, or the password is wrong.
            DirectoryUnavailable: the directory cannot be reached or refuses the service account.
        """
        if not password:  # a simple bind with no password is an anonymous bind, which "succeeds"
            raise SignInFailed(WRONG_PASSWORD)
        with self._service() as searcher:
            found = searcher.find_user(username)
            if found is None:
                raise SignInFailed(WRONG_PASSWORD)
            self._check_password(found[0], password)
            return searcher.entry(*found)

    def lookup_many(self, usernames: list[str]) -> dict[str, DirectoryEntry | None]:
        """Each user's current entry (None: no longer in the directory), over one service connection."""
        with self._service() as searcher:
            result: dict[str, DirectoryEntry | None] = {}
            for username in usernames:
                found = searcher.find_user(username)
                result[username] = searcher.entry(*found) if found else None
            return result

    # connections

    def _server(self) -> Any:
        ldap3 = _ldap3()
        parts = urlsplit(self.settings.url)
        secure = parts.scheme == "ldaps"
        # ldap3 checks the host name itself (the context's own check is off), for LDAPS and StartTLS alike.
        tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, version=ssl.PROTOCOL_TLS_CLIENT,
                        ca_certs_file=self.settings.ca_file, sni=parts.hostname)
        return ldap3.Server(parts.hostname or "", port=parts.port or (636 if secure else 389), use_ssl=secure,
                            tls=tls, get_info=ldap3.NONE, connect_timeout=self.settings.timeout_s)

    def _connect(self, user: str | None, password: str | None) -> Any:
        """An open, encrypted (unless allowed otherwise) connection, not yet bound."""
        ldap3 = _ldap3()
        from ldap3.core.exceptions import LDAPException

        connection = ldap3.Connection(self._server(), user=user, password=password, read_only=True,
                                      receive_timeout=max(1, round(self.settings.timeout_s)),
                                      raise_exceptions=False,
                                      auto_referrals=False)
        try:
            connection.open()
            if self.settings.start_tls and not connection.start_tls():
                raise DirectoryUnavailable(UNREACHABLE)
        except LDAPException as exc:
            connection.unbind()
            raise DirectoryUnavailable(UNREACHABLE) from exc
        return connection

    @contextmanager
    def _service(self) -> Iterator[_Searcher]:
        """A connection bound as the service account (anonymous when none is configured)."""
        from ldap3.core.exceptions import LDAPException

        secret = self.settings.bind_password.get_secret_value() if self.settings.bind_password else None
        connection = self._connect(self.settings.bind_dn, secret)
        try:
            if self.settings.bind_dn and not connection.bind():
                raise DirectoryUnavailable("the company directory refused Enclave's service account: tell an admin")
            yield _Searcher(connection, self.settings)
        except LDAPException as exc:
            raise DirectoryUnavailable(UNREACHABLE) from exc
        finally:
            connection.unbind()

    def _check_password(self, dn: str, password: str) -> None:
        from ldap3.core.exceptions import LDAPException

        connection = self._connect(dn, password)
        try:
            accepted = connection.bind()
            code = connection.result.get("result") if connection.result else None
        except LDAPException as exc:
            raise DirectoryUnavailable(UNREACHABLE) from exc
        finally:
            connection.unbind()
        if not accepted:
            if code not in (49, 50, 53):  # invalidCredentials, insufficientAccessRights, unwillingToPerform
                raise DirectoryUnavailable(UNREACHABLE)
            raise SignInFailed(WRONG_PASSWORD)


class _Searcher:
    """Searches on one service-account connection."""

    def __init__(self, connection: Any, settings: DirectorySettings) -> None:
        self.connection = connection
        self.settings = settings

    def _search(self, base: str, query: str, attributes: list[str], scope: str = "SUBTREE") -> list[dict[str, Any]]:
        from ldap3.core.exceptions import LDAPException

        if not self.connection.search(base, query, search_scope=scope, attributes=attributes):
            code = self.connection.result.get("result") if self.connection.result else None
            if code in (0, 32):  # success with no entries, noSuchObject
                return []
            raise LDAPException(f"search failed: {self.connection.result.get('description', code)}")
        entries = [e for e in self.connection.response if e.get("type") == "searchResEntry"]
        return [{"dn": e["dn"], **e["attributes"]} for e in entries]

    def find_user(self, username: str) -> tuple[str, dict[str, Any]] | None:
        """The DN and attributes of the one entry the user filter finds; None for none (or, oddly, several)."""
        from ldap3.utils.conv import escape_filter_chars

        s = self.settings
        query = s.user_filter.replace("{username}", escape_filter_chars(username))
        attributes = [s.username_attribute, s.name_attribute, s.email_attribute, s.member_of_attribute]
        found = self._search(s.user_base, query, attributes)
        if len(found) != 1:  # two entries for one name is a directory mistake: sign in neither
            return None
        return found[0]["dn"], found[0]

    def entry(self, dn: str, attributes: dict[str, Any]) -> DirectoryEntry:
        """The person's entry with their groups and state."""
        s = self.settings
        disabled = bool(s.disabled_filter and self._search(dn, s.disabled_filter, ["1.1"], scope="BASE"))
        return DirectoryEntry(
            dn=dn, username=_first(attributes, s.username_attribute), name=_first(attributes, s.name_attribute),
            email=_first(attributes, s.email_attribute), groups=self._groups(dn, attributes), disabled=disabled,
        )

    def _groups(self, dn: str, attributes: dict[str, Any]) -> tuple[str, ...]:
        """Names of the user's groups: their memberOf, groups listing them as member, and (nested) groups of those."""
        from ldap3.utils.conv import escape_filter_chars

        s = self.settings
        listed = attributes.get(s.member_of_attribute) or []
        member_of = [str(d) for d in (listed if isinstance(listed, list) else [listed])]
        names = {d.lower(): _rdn_value(d) for d in member_of}  # group DN (lower case) -> name
        frontier = [dn, *member_of] if s.nested_groups else [dn]
        searched: set[str] = set()
        for _ in range(MAX_NESTING if s.nested_groups else 1):
            frontier = [d for d in frontier if d.lower() not in searched]
            if not frontier or not s.group_base:
                break
            searched.update(d.lower() for d in frontier)
            members = "".join(f"({s.member_attribute}={escape_filter_chars(d)})" for d in frontier)
            found = self._search(s.group_base, f"(&{s.group_filter}(|{members}))", [s.group_name_attribute])
            frontier = [group["dn"] for group in found]
            for group in found:
                names[group["dn"].lower()] = _first(group, s.group_name_attribute) or _rdn_value(group["dn"])
        return tuple(sorted(set(names.values())))
