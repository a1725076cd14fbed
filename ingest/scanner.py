"""Walk a folder and decide, before any parsing, which files are candidates for ingestion."""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ingest.errors import IngestError
from ingest.parsers import FORMATS, FormatRegistry
from ingest.settings import IngestSettings
from storage.sources import SyncRules

# Editor swap files, Office lock files and OS litter: never documents, never failures.
IGNORED_PATTERNS = ("~$*", "*.swp", "*.swo", "*.swx", "*~", "#*#", "*.tmp", "*.part", "Thumbs.db", "desktop.ini")


@dataclass(frozen=True)
class FileEntry:
    """A regular file under the ingested folder."""

    rel: str
    path: Path
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    """Candidate files, files refused with a reason, and how many were ignored silently."""

    files: list[FileEntry] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)
    ignored: int = 0


def is_ignored(name: str) -> bool:
    """Hidden files and folders, swap and lock files."""
    return name.startswith(".") or any(fnmatch.fnmatch(name, p) for p in IGNORED_PATTERNS)


def matches(rel: str, patterns: tuple[str, ...]) -> bool:
    """Whether a relative POSIX path, or its file name, matches one of the glob patterns (``*`` spans folders)."""
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def scan_folder(
    root: Path, settings: IngestSettings, formats: FormatRegistry = FORMATS, rules: SyncRules | None = None,
) -> ScanResult:
    """List the files under ``root`` in one of ``formats`` (only names below it count as hidden or not).

    A source's ``rules`` leave out, silently, files its patterns do not take and folders they exclude,
    and may set its own size limit.
    """
    if not root.is_dir():
        raise IngestError(f"{root} is not a folder")
    root = root.resolve()
    result = ScanResult()
    rules = rules or SyncRules()
    limit = (settings.max_file_mb, "ingest.max_file_mb") if rules.max_file_mb is None else (
        rules.max_file_mb, "the source's size limit")

    def walk_error(exc: OSError) -> None:
        result.failures.append((_rel(root, Path(exc.filename or root)), f"cannot list folder: {exc.strerror}"))

    for folder, dirs, names in os.walk(root, onerror=walk_error):
        base = Path(folder)
        kept = []
        for d in sorted(dirs):
            if is_ignored(d) or matches(_rel(root, base / d), rules.exclude):
                result.ignored += 1
            elif (base / d).is_symlink():
                _symlinked_dir(root, base / d, result)
            else:
                kept.append(d)
        dirs[:] = kept
        for name in sorted(names):
            rel = _rel(root, base / name)
            if is_ignored(name) or matches(rel, rules.exclude) or (rules.include and not matches(rel, rules.include)):
                result.ignored += 1
            else:
                _consider(root, base / name, limit, formats, result)
    return result


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


def _symlinked_dir(root: Path, link: Path, result: ScanResult) -> None:
    target = link.resolve()
    if not target.is_relative_to(root):
        result.failures.append((_rel(root, link), "symlink points outside the ingested folder"))
    else:
        result.ignored += 1  # its files are ingested under their real path


def _consider(root: Path, path: Path, limit: tuple[float, str], formats: FormatRegistry, result: ScanResult) -> None:
    rel = _rel(root, path)
    reason = _refusal(root, path, limit, formats)
    if reason == "":
        result.ignored += 1
        return
    if reason:
        result.failures.append((rel, reason))
        return
    info = path.stat()
    result.files.append(FileEntry(rel, path, info.st_size, info.st_mtime_ns))


def _refusal(root: Path, path: Path, limit: tuple[float, str], formats: FormatRegistry) -> str | None:
    """A reason to refuse the file, "" to ignore it silently, None to ingest it; ``limit``: MB, and its setting."""
    if path.is_symlink():
        target = path.resolve()
        if not target.exists():
            return "broken symlink"
        if not target.is_relative_to(root):
            return "symlink points outside the ingested folder"
        return ""  # the target is ingested under its own path
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot read file: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    suffix = path.suffix.lower()
    if suffix not in formats.suffixes:
        return f"unsupported file type {suffix or '(no extension)'}"
    if info.st_size == 0:
        return "empty file (0 bytes)"
    max_mb, setting = limit
    if info.st_size > max_mb * 1024 * 1024:
        return f"file is {info.st_size / 2**20:.1f} MB, over the {max_mb:g} MB limit ({setting})"
    if not os.access(path, os.R_OK):
        return "permission denied"
    return None
