"""Reads and writes of users, groups, read grants, sessions and the audit log.

No permission checks here: ``assistant.accounts`` and ``assistant.access`` decide who may
call what; this module only keeps the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from storage.accounts import AuditEvent, CollectionGrant, Group, GroupMember, User, WebSession
from storage.db import Database
from storage.models import Collection, utcnow


@dataclass(frozen=True)
class UserRecord:
    """A user row as the services see it."""

    id: int
    username: str
    password_hash: str
    role: str
    active: bool
    failed_sign_ins: int
    locked_until: datetime | None
    source: str = "local"
    """``local`` (a password kept here) or ``directory`` (signs in at the company directory)."""
    directory_dn: str | None = None
    display_name: str = ""
    email: str = ""
    directory_disabled: bool = False
    """Disabled because the directory disabled or removed the account (a directory sign-in re-enables it)."""


@dataclass(frozen=True)
class Membership:
    """A user's membership of a group, and who decided it: ``manual`` (an admin) or ``directory``."""

    group: str
    source: str
    directory_group: str = ""


@dataclass(frozen=True)
class GrantPath:
    """One reason a user reads a collection: a group they belong to that the collection is granted to."""

    collection: str
    group: str
    source: str
    directory_group: str = ""


def user_record(row: User) -> UserRecord:
    """The services' view of a user row."""
    return UserRecord(row.id, row.username, row.password_hash, row.role, row.active, row.failed_sign_ins,
                      row.locked_until, row.source, row.directory_dn, row.display_name, row.email,
                      row.directory_disabled)


class AccountStore:
    """Users, groups, grants, sessions and audit events in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # users

    def add_user(self, username: str, password_hash: str, role: str) -> int:
        """Insert a user; the caller checked the name is free."""
        with self.db.session() as s:
            row = User(username=username, password_hash=password_hash, role=role, active=True, failed_sign_ins=0)
            s.add(row)
            s.flush()
            return row.id

    def add_user_if_absent(self, username: str, password_hash: str, role: str) -> int | None:
        """Insert a user unless another process just did; None when the name was taken."""
        try:
            return self.add_user(username, password_hash, role)
        except IntegrityError:  # two app processes starting at once on an empty database
            return None

    def add_directory_user(self, username: str, directory_dn: str, role: str, source: str = "directory") -> int:
        """Insert an account the directory (or the OpenID provider, ``oidc``) owns; no hash ever verifies ``!``."""
        with self.db.session() as s:
            row = User(username=username, password_hash="!", role=role, active=True, failed_sign_ins=0,
                       source=source, directory_dn=directory_dn)
            s.add(row)
            s.flush()
            return row.id

    def directory_users(self) -> list[UserRecord]:
        """Every account the directory owns, by name."""
        with self.db.session() as s:
            return [user_record(r) for r in s.scalars(select(User).where(User.source == "directory")
                                                  .order_by(User.username))]

    def user(self, username: str) -> UserRecord | None:
        """A user by name."""
        with self.db.session() as s:
            row = s.scalar(select(User).where(User.username == username))
            return user_record(row) if row else None

    def user_by_id(self, user_id: int) -> UserRecord | None:
        """A user by id."""
        with self.db.session() as s:
            row = s.get(User, user_id)
            return user_record(row) if row else None

    def users(self) -> list[tuple[UserRecord, list[str]]]:
        """Every user with the names of their groups, by name."""
        with self.db.session() as s:
            rows = list(s.scalars(select(User).order_by(User.username)))
            pairs = s.execute(select(GroupMember.user_id, Group.name).join(Group, Group.id == GroupMember.group_id))
            groups: dict[int, list[str]] = {}
            for uid, name in pairs:
                groups.setdefault(uid, []).append(name)
            return [(user_record(r), sorted(groups.get(r.id, []))) for r in rows]

    def count_users(self, role: str | None = None) -> int:
        """How many (active, when ``role`` is given) users there are."""
        query = select(func.count(User.id))
        if role is not None:
            query = query.where(User.role == role, User.active.is_(True))
        with self.db.session() as s:
            return int(s.scalar(query) or 0)

    def update_user(self, user_id: int, **values: Any) -> None:
        """Change columns of a user (password_hash, role, active, failed_sign_ins, locked_until)."""
        with self.db.session() as s:
            s.execute(update(User).where(User.id == user_id).values(**values))

    # groups and grants

    def group_id(self, name: str, create: bool = False) -> int | None:
        """A group's id by name, created on request."""
        with self.db.session() as s:
            found = s.scalar(select(Group.id).where(Group.name == name))
            if found is not None or not create:
                return found
            row = Group(name=name)
            s.add(row)
            s.flush()
            return row.id

    def delete_group(self, group_id: int) -> None:
        """Remove a group with its memberships and grants."""
        with self.db.session() as s:
            s.execute(delete(GroupMember).where(GroupMember.group_id == group_id))
            s.execute(delete(CollectionGrant).where(CollectionGrant.group_id == group_id))
            s.execute(delete(Group).where(Group.id == group_id))

    def set_member(self, group_id: int, user_id: int, member: bool, source: str = "manual",
                   directory_group: str = "") -> None:
        """Add a user to a group or take them out; ``source`` says who decided a new membership."""
        with self.db.session() as s:
            exists = s.get(GroupMember, (group_id, user_id)) is not None
            if member and not exists:
                s.add(GroupMember(group_id=group_id, user_id=user_id, source=source,
                                  directory_group=directory_group[:200]))
            elif not member and exists:
                s.execute(delete(GroupMember).where(GroupMember.group_id == group_id, GroupMember.user_id == user_id))

    def set_grant(self, collection_id: int, group_id: int, granted: bool) -> None:
        """Give a group read access to a collection, or take it back."""
        with self.db.session() as s:
            exists = s.get(CollectionGrant, (collection_id, group_id)) is not None
            if granted and not exists:
                s.add(CollectionGrant(collection_id=collection_id, group_id=group_id))
            elif not granted and exists:
                s.execute(delete(CollectionGrant).where(
                    CollectionGrant.collection_id == collection_id, CollectionGrant.group_id == group_id))

    def groups(self) -> list[dict[str, Any]]:
        """Every group with its members and the collections it may read."""
        with self.db.session() as s:
            groups = {gid: name for gid, name in s.execute(select(Group.id, Group.name))}
            members: dict[int, list[str]] = {gid: [] for gid in groups}
            for gid, username in s.execute(
                select(GroupMember.group_id, User.username).join(User, User.id == GroupMember.user_id)
            ):
                members[gid].append(username)
            readable: dict[int, list[str]] = {gid: [] for gid in groups}
            for gid, cname in s.execute(
                select(CollectionGrant.group_id, Collection.name)
                .join(Collection, Collection.id == CollectionGrant.collection_id)
            ):
                readable[gid].append(cname)
        return [{"name": name, "members": sorted(members[gid]), "collections": sorted(readable[gid])}
                for gid, name in sorted(groups.items(), key=lambda item: item[1])]

    def memberships(self, user_id: int) -> list[Membership]:
        """The user's groups, by name, with who decided each membership."""
        query = (select(Group.name, GroupMember.source, GroupMember.directory_group)
                 .join(GroupMember, GroupMember.group_id == Group.id)
                 .where(GroupMember.user_id == user_id).order_by(Group.name))
        with self.db.session() as s:
            return [Membership(*row) for row in s.execute(query)]

    def grant_paths(self, user_id: int) -> list[GrantPath]:
        """Every (collection, group) pair through which the user reads a collection."""
        query = (
            select(Collection.name, Group.name, GroupMember.source, GroupMember.directory_group)
            .join(CollectionGrant, CollectionGrant.collection_id == Collection.id)
            .join(Group, Group.id == CollectionGrant.group_id)
            .join(GroupMember, GroupMember.group_id == Group.id)
            .where(GroupMember.user_id == user_id)
            .order_by(Collection.name, Group.name)
        )
        with self.db.session() as s:
            return [GrantPath(*row) for row in s.execute(query)]

    def readable_collections(self, user_id: int) -> set[str]:
        """Names of the collections granted to any group the user belongs to."""
        query = (
            select(Collection.name)
            .join(CollectionGrant, CollectionGrant.collection_id == Collection.id)
            .join(GroupMember, GroupMember.group_id == CollectionGrant.group_id)
            .where(GroupMember.user_id == user_id)
        )
        with self.db.session() as s:
            return set(s.scalars(query))

    # sessions

    def add_session(self, token_hash: str, user_id: int, expires_at: datetime, client: str) -> None:
        """Remember a signed-in browser."""
        with self.db.session() as s:
            s.add(WebSession(token_hash=token_hash, user_id=user_id, expires_at=expires_at, client=client[:200]))

    def session_user(self, token_hash: str) -> UserRecord | None:
        """The active user of an unexpired session."""
        now = utcnow()
        with self.db.session() as s:
            row = s.execute(
                select(WebSession.expires_at, User).join(User, User.id == WebSession.user_id)
                .where(WebSession.token_hash == token_hash)
            ).first()
            if row is None:
                return None
            expires_at, user = row
            if _aware(expires_at) <= now or not user.active:
                return None
            return user_record(user)

    def delete_sessions(self, token_hash: str | None = None, user_id: int | None = None) -> None:
        """End one session, or every session of a user, and drop expired ones."""
        with self.db.session() as s:
            if token_hash is not None:
                s.execute(delete(WebSession).where(WebSession.token_hash == token_hash))
            if user_id is not None:
                s.execute(delete(WebSession).where(WebSession.user_id == user_id))
            s.execute(delete(WebSession).where(WebSession.expires_at < utcnow()))

    # audit log

    def add_event(self, username: str, action: str, target: str, detail: dict[str, Any]) -> None:
        """Append to the audit log."""
        with self.db.session() as s:
            s.add(AuditEvent(username=username, action=action, target=target, detail=detail, at=utcnow()))

    def events(self, limit: int = 200, action: str | None = None) -> list[dict[str, Any]]:
        """The newest audit events first."""
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action:
            query = query.where(AuditEvent.action == action)
        with self.db.session() as s:
            return [{"at": _aware(e.at), "user": e.username, "action": e.action, "target": e.target,
                     "detail": e.detail} for e in s.scalars(query)]


def _aware(stamp: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns; they were written in UTC."""
    from datetime import UTC

    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
