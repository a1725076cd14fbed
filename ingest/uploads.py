"""Uploaded files into a collection's upload folder: each checked on its own, kept under its own name, never twice.

A batch is copied into a hidden staging folder first and checked there, file by file (type, size,
content against the extension, content already in the collection); only then are the accepted
files linked into the collection's folder, without ever replacing a file already there. A refused
file never reaches that folder, and a batch that fails part way (a full disk) or whose ingest
cannot be queued is taken out again whole (``UploadBatch.discard``).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from ingest.errors import IngestError
from ingest.parsers import FormatRegistry
from ingest.scanner import is_ignored

MAX_NAME_BYTES = 240  # under the 255 of most file systems, leaving room for " (12)"
STAGING = ".staging"
# Control, format (a right-to-left override), surrogate, private-use, unassigned and line-separator characters.
_INVISIBLE = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Upload:
    """A file as it arrived: where the web server put it, and the name the user gave it."""

    path: Path
    original: str


@dataclass(frozen=True)
class StoredUpload:
    """An accepted upload: the name it is kept, ingested and shown under, in the collection's folder."""

    name: str
    original: str
    path: Path


@dataclass
class UploadBatch:
    """What became of one batch: the files kept, and every refused file with the reason."""

    stored: list[StoredUpload] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    def discard(self) -> None:
        """Take the kept files out again (their ingest could not be queued)."""
        for upload in self.stored:
            upload.path.unlink(missing_ok=True)
        self.stored = []


KnownContent = Callable[[Iterable[str]], dict[str, str]]
"""Which of some content hashes the collection already holds (or has waiting): hash -> file name."""


def upload_name(original: str) -> str:
    """The name an upload is kept under: the user's own file name, less anything that could act as a path.

    Folders, control and invisible format characters (a right-to-left override) and leading dots
    go; the name keeps its case, spaces and accents, because it is what people see in sources and
    the documents list.
    """
    base = PurePosixPath(original.replace("\\", "/")).name
    kept = unicodedata.normalize("NFC", "".join(
        " " if unicodedata.category(ch) == "Zs" else ch for ch in base if unicodedata.category(ch) not in _INVISIBLE))
    stem, dot, suffix = kept.strip().rpartition(".")
    if not dot:
        stem, suffix = kept, ""
    tail = f".{suffix.strip()[:16]}" if suffix.strip() else ""
    stem = stem.lstrip(". ").strip()
    stem = stem.encode()[: MAX_NAME_BYTES - len(tail.encode())].decode(errors="ignore").strip()
    return (stem or "upload") + tail


class UploadFolder:
    """A collection's upload folder, which its upload jobs ingest."""

    def __init__(self, folder: Path, formats: FormatRegistry, max_bytes: int, limit_hint: str) -> None:
        """``limit_hint`` names the setting behind ``max_bytes`` in refusals ("web.max_upload_mb")."""
        self.folder = folder
        self.formats = formats
        self.max_bytes = max_bytes
        self.limit_hint = limit_hint

    def add(self, uploads: list[Upload], known: KnownContent) -> UploadBatch:
        """Check each upload and keep the good ones; a failure part way keeps none of this batch."""
        self.folder.mkdir(parents=True, exist_ok=True)
        staging_root = self.folder.parent / STAGING
        staging_root.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=staging_root))
        batch = UploadBatch()
        try:
            staged = self._staged(uploads, staging, batch)
            found = known(digest for digest, _, _ in staged)
            seen: dict[str, str] = {}
            for digest, upload, copy in staged:
                reason = _duplicate(digest, found, seen)
                if reason:
                    batch.refused.append((upload.original, reason))
                    continue
                seen[digest] = upload.original
                batch.stored.append(self._place(copy, upload))
        except BaseException:
            batch.discard()
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return batch

    def _staged(self, uploads: list[Upload], staging: Path, batch: UploadBatch) -> list[tuple[str, Upload, Path]]:
        """Copy each upload that passes the checks into ``staging``; record the others as refused."""
        staged = []
        for n, upload in enumerate(uploads):
            try:
                copy, digest = self._stage(upload, staging / f"{n}")
            except IngestError as exc:
                batch.refused.append((upload.original, str(exc)))
                continue
            staged.append((digest, upload, copy))
        return staged

    def _stage(self, upload: Upload, slot: Path) -> tuple[Path, str]:
        name = upload_name(upload.original)
        suffix = PurePosixPath(name).suffix
        self.formats.for_suffix(suffix)  # SkipFile: "unsupported file type .heic", with a hint for old formats
        if is_ignored(name):
            raise IngestError("an editor's lock or temporary file, not a document")
        size = upload.path.stat().st_size
        if size == 0:
            raise IngestError("empty file (0 bytes)")
        if size > self.max_bytes:
            raise IngestError(f"file is {size / 2**20:.1f} MB, over the {self.max_bytes / 2**20:g} MB upload limit "
                              f"({self.limit_hint})")
        slot.mkdir()
        copy = slot / f"upload{suffix}"
        digest = _copy_hashing(upload.path, copy)
        self.formats.detect(copy)  # SkipFile: "content is a PNG image, not a PDF", "password-protected DOCX file"
        return copy, digest

    def _place(self, copy: Path, upload: Upload) -> StoredUpload:
        """Link the checked copy into the folder under its name, or "name (2)" if another file has that name."""
        name = upload_name(upload.original)
        stem, suffix = PurePosixPath(name).stem, PurePosixPath(name).suffix
        for n in range(1, 1000):
            candidate = name if n == 1 else f"{stem} ({n}){suffix}"
            try:
                os.link(copy, self.folder / candidate)  # never replaces: a concurrent upload keeps its file
            except FileExistsError:
                continue
            return StoredUpload(candidate, upload.original, self.folder / candidate)
        raise IngestError(f"{name}: too many files of that name in the collection")


def _duplicate(digest: str, found: dict[str, str], seen: dict[str, str]) -> str:
    if digest in found:
        return f"same content as {found[digest]}, already in the collection"
    if digest in seen:
        return f"same content as {seen[digest]}, in this upload"
    return ""


def _copy_hashing(source: Path, target: Path) -> str:
    """Copy a file and return the SHA-256 of what was written, in one read."""
    digest = hashlib.sha256()
    with source.open("rb") as src, target.open("xb") as dst:
        for block in iter(lambda: src.read(1 << 20), b""):
            digest.update(block)
            dst.write(block)
    return digest.hexdigest()
