"""Per-user API tokens: the table (migration 0003) and its reads and writes.

Only the SHA-256 of a token is stored. No permission checks here: ``assistant.api_tokens``
decides who may create, list and revoke which token.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, mapped_column

from storage.account_store import UserRecord, user_record
from storage.accounts import User
from storage.db import Database
from storage.models import Base, utcnow

Stamp = DateTime(timezone=True)


class ApiToken(Base):
    """A bearer token a user created for scripts and other tools; revoked tokens are kept for the record."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16), doc="The token's first characters, to tell tokens apart.")
    created_at: Mapped[datetime] = mapped_column(Stamp, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(Stamp, nullable=True)


@dataclass(frozen=True)
class TokenRecord:
    """A token as its owner sees it (never the token itself)."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    expires_at: datetime | None = None


def _aware(stamp: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes for timezone-aware columns; they were written in UTC."""
    return stamp.replace(tzinfo=UTC) if stamp is not None and stamp.tzinfo is None else stamp


def _record(row: ApiToken) -> TokenRecord:
    return TokenRecord(row.id, row.user_id, row.name, row.prefix, _aware(row.created_at) or utcnow(),
                       _aware(row.last_used_at), _aware(row.revoked_at), _aware(row.expires_at))


class ApiTokenStore:
    """API tokens in the metadata database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, user_id: int, name: str, token_hash: str, prefix: str,
            expires_at: datetime | None = None) -> TokenRecord:
        """Insert a token (one that never expires when ``expires_at`` is None)."""
        with self.db.session() as s:
            row = ApiToken(user_id=user_id, name=name, token_hash=token_hash, prefix=prefix, created_at=utcnow(),
                           expires_at=expires_at)
            s.add(row)
            s.flush()
            return _record(row)

    def tokens(self, user_id: int) -> list[TokenRecord]:
        """A user's tokens, newest first, revoked ones included."""
        query = select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        with self.db.session() as s:
            return [_record(row) for row in s.scalars(query)]

    def token(self, token_id: int) -> TokenRecord | None:
        """One token by id."""
        with self.db.session() as s:
            row = s.get(ApiToken, token_id)
            return _record(row) if row else None

    def owner(self, token_hash: str) -> tuple[TokenRecord, UserRecord] | None:
        """The unrevoked token with this hash and its user, whatever the user's state."""
        query = (select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                 .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None)))
        with self.db.session() as s:
            row = s.execute(query).first()
            if row is None:
                return None
            token, user = row
            return _record(token), user_record(user)

    def touch(self, token_id: int, at: datetime) -> None:
        """Record when a token was last used."""
        with self.db.session() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=at))

    def revoke(self, token_id: int, at: datetime) -> None:
        """Mark a token revoked; it stops working with the next request."""
        with self.db.session() as s:
            s.execute(update(ApiToken).where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                      .values(revoked_at=at))
