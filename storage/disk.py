"""Recognising a full disk in whatever shape the layer below reports it."""

from __future__ import annotations

import errno

# SQLite says this for SQLITE_FULL; PostgreSQL's disk_full is SQLSTATE 53100.
MESSAGES = ("database or disk is full", "no space left on device", "disk quota exceeded")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error that caused it, is the disk running out of space."""
    seen: BaseException | None = exc
    for _ in range(10):  # cause chains are short; a cycle must not loop forever
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if getattr(seen, "sqlstate", None) == "53100" or any(m in str(seen).lower() for m in MESSAGES):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
