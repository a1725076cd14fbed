"""Refuse Office files (zip containers) that would expand into far more data than they hold."""

from __future__ import annotations

import zipfile
from pathlib import Path

from ingest.errors import SkipFile

_MB = 1024 * 1024
# Office XML deflates about 5-20x; a member this big that deflated over 200x is a bomb.
_SUSPICIOUS_MEMBER_BYTES = 20 * _MB
_SUSPICIOUS_RATIO = 200
_MAX_MEMBERS = 50_000


def check_office_zip(path: Path, label: str, max_unzipped_mb: float) -> None:
    """Raise SkipFile if ``path`` is not a readable zip or looks like a zip bomb.

    ``label`` names the format in messages ("DOCX"). Only the central directory is read.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError) as exc:
        raise SkipFile(f"corrupt or truncated {label} file ({exc})") from exc
    if len(members) > _MAX_MEMBERS:
        raise SkipFile(f"zip bomb: {len(members)} parts inside one {label} file")
    total = sum(m.file_size for m in members)
    if total > max_unzipped_mb * _MB:
        raise SkipFile(
            f"zip bomb: expands to {total / _MB:.0f} MB, over the {max_unzipped_mb:g} MB limit (ingest.max_unzipped_mb)"
        )
    for member in members:
        if member.file_size >= _SUSPICIOUS_MEMBER_BYTES:
            ratio = member.file_size / max(member.compress_size, 1)
            if ratio > _SUSPICIOUS_RATIO:
                raise SkipFile(
                    f"zip bomb: expands to {total / _MB:.0f} MB ({member.filename} is compressed {ratio:.0f}:1)"
                )
