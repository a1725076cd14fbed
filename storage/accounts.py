"""The web app's account tables: users, groups, read grants, sessions and the audit log.

Created by migration 0002; directory fields by 0009. Collections live in ``storage.models``, chats in ``storage.chats``;
a grant gives one group read access to one collection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow

Stamp = DateTime(timezone=True)


class User(Base):
    """Someone who signs in; ``role`` is ``admin`` or ``user``."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(String(20), default="user")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    # Migration 0009: accounts the company directory owns (``source = "directory"``) sign in there only.
    source: Mapped[str] = mapped_column(String(20), default="local", server_default="local")
    directory_dn: Mapped[str | None] = mapped_column(Text, nullable=True)
    display_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    email: Mapped[str] = mapped_column(String(200), default="", server_default="")
    directory_disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Group(Base):
    """A named set of users that collections grant read access to."""

    __tablename__ = "groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class GroupMember(Base):
    """A user's membership of a group."""

    __tablename__ = "group_members"
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # "manual" (an admin) or "directory" (a directory group; the sync adds and removes these only).
    source: Mapped[str] = mapped_column(String(20), default="manual", server_default="manual")
    directory_group: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """The directory group that made a ``directory`` membership (several map to one: the first)."""


class CollectionGrant(Base):
    """Read access to a collection for the members of a group."""

    __tablename__ = "collection_grants"
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[int] = mapped_column(ForeignKey("groups.id", ondelete="CASCADE"), primary_key=True)


class WebSession(Base):
    """A signed-in browser; only the SHA-256 of the cookie's token is stored."""

    __tablename__ = "web_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(Stamp)
    client: Mapped[str] = mapped_column(String(200), default="")


class AuditEvent(Base):
    """Something an administrator may need to account for: sign-ins, ingestion, permissions, questions."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    username: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
