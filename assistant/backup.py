"""Backups of a whole install as one archive, their restore, and moving the database elsewhere.

An archive is a gzip'd tar with these members, the manifest last:

- ``database/enclave.db``: the database as a SQLite file. A SQLite install is copied with
  the online backup API (one read snapshot while the app keeps running). A PostgreSQL
  install is copied table by table through SQLAlchemy into that file inside one
  REPEATABLE READ transaction (a snapshot, as pg_dump takes). The portable copy is used
  rather than pg_dump because it needs no client binary of the server's exact version,
  and because one format restores into either SQLite or PostgreSQL.
- ``index/c<id>/CURRENT`` and ``index/c<id>/v<version>/...``: only the live version of each
  collection's index. Version folders never change once written, so they are first
  hard-linked (or copied) aside; a save that prunes the folder meanwhile cannot tear them.
  The index is taken before the database, and on first open every index is reconciled
  with the database (the source of truth), so a chunk written in between is added from
  its stored embedding: the restored install is consistent however busy the app was.
- ``settings/enclave.toml``: the settings file, when there is one.
- ``uploads/...``: files admins uploaded through the web app.
- ``manifest.json``: format, schema revision, row counts, and the size and SHA-256 of
  every other member, all checked before restore changes anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import IO, Any

from assistant.data_dir import make_data_dir, private_copy
from assistant.errors import ConfigError, InvalidInput
from assistant.settings import CONFIG_FILE_NAME, Settings
from storage.db import Database
from storage.transfer import (
    CopyProgress,
    copy_database,
    known_revision,
    model_tables,
    rebase_document_roots,
    require_empty_database,
    snapshot_sqlite,
    sqlite_path,
    table_counts,
    verify_counts,
)

FORMAT = "enclave-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DB_MEMBER = "database/enclave.db"
SETTINGS_MEMBER = "settings/enclave.toml"
INDEX_CURRENT = "CURRENT"
CHUNK = 1 << 20
Note = Callable[[str], None]


class BackupDamaged(InvalidInput):
    """A backup archive is truncated, altered or not an Enclave backup; nothing was restored."""


@dataclass
class BackupReport:
    """What a backup or a restore wrote."""

    path: Path
    database: str
    db_method: str
    rows: dict[str, int]
    index_versions: dict[str, str]
    files: int
    bytes: int
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` shape."""
        return {"path": str(self.path), "database": self.database, "db_method": self.db_method,
                "rows": self.rows, "index_versions": self.index_versions, "files": self.files,
                "bytes": self.bytes, "notes": self.notes}


def display_url(url: str) -> str:
    """A database URL with any password masked, for messages."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# ---------------------------------------------------------------- backup


class _ArchiveWriter:
    """Adds files to a tar while hashing exactly the bytes written."""

    def __init__(self, tar: tarfile.TarFile) -> None:
        self.tar = tar
        self.files: dict[str, dict[str, Any]] = {}

    def add_file(self, path: Path, name: str) -> None:
        with path.open("rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._add(fh, name, size)

    def add_bytes(self, data: bytes, name: str) -> None:
        import io

        self._add(io.BytesIO(data), name, len(data))

    def _add(self, fh: IO[bytes], name: str, size: int) -> None:
        reader = _HashingReader(fh)
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = size, int(datetime.now(UTC).timestamp()), 0o600
        self.tar.addfile(info, reader)
        self.files[name] = {"sha256": reader.digest.hexdigest(), "size": size}


class _HashingReader:
    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.digest = hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.digest.update(data)
        return data


def create_backup(settings: Settings, dest: Path, config_file: Path | None = None,
                  progress: CopyProgress | None = None) -> BackupReport:
    """Write one archive holding the database, live index versions, settings file and uploads.

    Args:
        settings: The install to back up (it may be running).
        dest: The archive to write; must not exist yet.
        config_file: The settings file in use when it is not ``DATA_DIR/enclave.toml``.
        progress: Called while a PostgreSQL database is copied.
    """
    if dest.exists():
        raise InvalidInput(f"{dest} already exists; choose a new file name for the backup")
    if not settings.data_dir.is_dir():
        raise InvalidInput(f"{settings.data_dir} holds no Enclave install (no such folder)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    try:
        return _write_backup(settings, dest, partial, config_file, progress)
    finally:
        partial.unlink(missing_ok=True)


def _write_backup(settings: Settings, dest: Path, partial: Path, config_file: Path | None,
                  progress: CopyProgress | None) -> BackupReport:
    with tempfile.TemporaryDirectory(prefix=".enclave-backup-", dir=settings.data_dir) as scratch:
        staging = Path(scratch)
        versions = _stage_indexes(settings.index_dir, staging / "index")
        method, rows, revision = _stage_database(settings, staging / "enclave.db", progress)
        with tarfile.open(partial, "w:gz", compresslevel=6) as tar:
            writer = _ArchiveWriter(tar)
            for path in sorted(p for p in (staging / "index").rglob("*") if p.is_file()):
                writer.add_file(path, "index/" + path.relative_to(staging / "index").as_posix())
            writer.add_file(staging / "enclave.db", DB_MEMBER)
            settings_file = config_file or settings.data_dir / CONFIG_FILE_NAME
            if settings_file.is_file():
                writer.add_file(settings_file, SETTINGS_MEMBER)
            _add_uploads(writer, settings.data_dir / "uploads")
            manifest = _manifest(settings, method, rows, revision, versions, writer.files)
            writer.add_bytes(json.dumps(manifest, indent=1).encode("utf-8"), MANIFEST)
    os.replace(partial, dest)
    return BackupReport(dest, display_url(settings.db_url), method, rows, versions, len(writer.files),
                        dest.stat().st_size)


def _manifest(settings: Settings, method: str, rows: dict[str, int], revision: str | None,
              versions: dict[str, str], files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "created_at": datetime.now(UTC).isoformat(),
            "data_dir": str(settings.data_dir.resolve()), "source_database": display_url(settings.db_url),
            "db_method": method, "schema_revision": revision, "rows": rows, "index_versions": versions,
            "files": files}


def _stage_database(
    settings: Settings, dest: Path, progress: CopyProgress | None
) -> tuple[str, dict[str, int], str | None]:
    """Snapshot the database into a SQLite file; returns the method, row counts and schema revision."""
    path = sqlite_path(settings.db_url)
    if path is not None:
        snapshot_sqlite(path, dest)
        method = "SQLite online backup API"
    else:
        source, copy = Database(settings.db_url), Database(f"sqlite:///{dest}")
        try:
            copy_database(source, copy, progress)
        finally:
            source.dispose()
            copy.dispose()
        method = "SQLAlchemy copy of every table in one REPEATABLE READ snapshot"
    snapshot = Database(f"sqlite:///{dest}")
    try:
        return method, database_rows(snapshot), snapshot.schema_version()
    finally:
        snapshot.dispose()


def database_rows(db: Database) -> dict[str, int]:
    """Rows per Enclave table present in ``db``."""
    from sqlalchemy import inspect

    with db.engine.connect() as conn:
        present = set(inspect(conn).get_table_names())
        return table_counts(conn, [t for t in model_tables() if t.name in present])


def _stage_indexes(index_dir: Path, dest: Path) -> dict[str, str]:
    """Set aside the live version of every collection's index; returns {collection folder: version}."""
    versions: dict[str, str] = {}
    if not index_dir.is_dir():
        return versions
    for folder in sorted(p for p in index_dir.iterdir() if p.is_dir() and p.name[:1] == "c" and p.name[1:].isdigit()):
        version = _stage_live_version(folder, dest / folder.name)
        if version:
            versions[folder.name] = version
    return versions


def _stage_live_version(folder: Path, dest: Path) -> str | None:
    for _attempt in range(5):
        try:
            name = (folder / INDEX_CURRENT).read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        if not (name[:1] == "v" and name[1:].isdigit()):
            raise ConfigError(f"{folder / INDEX_CURRENT} does not name an index version; run `run.py status` to repair")
        shutil.rmtree(dest, ignore_errors=True)
        try:
            shutil.copytree(folder / name, dest / name, copy_function=_link_or_copy)
        except (FileNotFoundError, shutil.Error):
            continue  # a save pruned this version while it was being linked: take the new CURRENT
        (dest / INDEX_CURRENT).write_text(name + "\n", encoding="ascii")
        return name
    raise ConfigError(f"the index in {folder} changed five times during the backup; run the backup again")


def _link_or_copy(src: str, dst: str) -> None:
    # Version files never change once written, so a hard link is a snapshot that costs no space.
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _add_uploads(writer: _ArchiveWriter, folder: Path) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            writer.add_file(path, "uploads/" + path.relative_to(folder).as_posix())


# ---------------------------------------------------------------- restore


@dataclass
class UnpackedBackup:
    """A backup extracted into a scratch folder, every member checked against the manifest."""

    source: Path
    root: Path
    manifest: dict[str, Any]

    @property
    def settings_file(self) -> Path | None:
        """The archived settings file, when the install had one."""
        path = self.root / SETTINGS_MEMBER
        return path if path.is_file() else None

    @property
    def database_file(self) -> Path:
        """The archived database, as a SQLite file."""
        return self.root / DB_MEMBER


@contextmanager
def unpack_backup(src: Path) -> Iterator[UnpackedBackup]:
    """Extract and verify an archive into a scratch folder (removed afterwards).

    Raises:
        BackupDamaged: truncated, altered, or not an Enclave backup.
    """
    if not src.is_file():
        raise InvalidInput(f"{src} is not a file")
    with tempfile.TemporaryDirectory(prefix="enclave-restore-") as scratch:
        root = Path(scratch)
        _extract(src, root)
        manifest = _read_manifest(src, root)
        _check_members(src, root, manifest)
        yield UnpackedBackup(src, root, manifest)


def _extract(src: Path, root: Path) -> None:
    import gzip

    try:
        with tarfile.open(src, "r:*") as tar:
            tar.extractall(root, filter="data")  # refuses absolute paths, '..' and links leaving root
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise BackupDamaged(f"{src} is damaged or incomplete, nothing was restored ({exc})") from exc
    except OSError as exc:
        raise InvalidInput(f"could not unpack {src}, nothing was restored: {exc}") from exc


def _read_manifest(src: Path, root: Path) -> dict[str, Any]:
    try:
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise BackupDamaged(
            f"{src} has no manifest: it is incomplete or not an Enclave backup; nothing was restored"
        ) from exc
    except ValueError as exc:
        raise BackupDamaged(f"the manifest of {src} cannot be read ({exc}); nothing was restored") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupDamaged(f"{src} is not an Enclave backup; nothing was restored")
    if int(manifest.get("format_version", 0)) > FORMAT_VERSION:
        raise InvalidInput(f"{src} was written by a newer Enclave (format {manifest['format_version']}); upgrade first")
    if not known_revision(manifest.get("schema_revision")):
        raise InvalidInput(f"{src} was written by a newer Enclave (database schema {manifest['schema_revision']}); "
                           "upgrade Enclave before restoring it")
    return manifest


def _check_members(src: Path, root: Path, manifest: dict[str, Any]) -> None:
    listed: dict[str, dict[str, Any]] = manifest.get("files", {})
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()} - {MANIFEST}
    extra, missing = sorted(found - set(listed)), sorted(set(listed) - found)
    if extra or missing or DB_MEMBER not in listed:
        what = ", ".join([f"missing {m}" for m in missing] + [f"unexpected {e}" for e in extra]) or f"no {DB_MEMBER}"
        raise BackupDamaged(f"{src} does not match its manifest ({what}); nothing was restored")
    for name, expected in sorted(listed.items()):
        path = root / PurePosixPath(name)
        if path.stat().st_size != expected["size"] or _sha256(path) != expected["sha256"]:
            raise BackupDamaged(f"{src}: {name} does not match its SHA-256 (altered or damaged); nothing was restored")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def restore_backup(backup: UnpackedBackup, settings: Settings, force: bool = False,
                   progress: CopyProgress | None = None) -> BackupReport:
    """Restore a verified backup into the data dir and database ``settings`` name.

    Args:
        backup: From ``unpack_backup``.
        settings: The install to restore into (its data dir, database URL).
        force: Replace what the data dir and database already hold instead of refusing.
        progress: Called while rows are copied into a database server.
    """
    data_dir, url = settings.data_dir.resolve(), settings.db_url
    target_file = sqlite_path(url)
    as_file = target_file is not None and (force or not target_file.exists())
    _check_targets(data_dir, url, as_file, force)
    if force:
        _clear_previous(data_dir, settings.index_dir, target_file)
    make_data_dir(data_dir)
    db = Database(url)
    try:
        method = _restore_database(backup, db, target_file if as_file else None, force, progress)
        tables = [t for t in model_tables() if t.name in backup.manifest["rows"]]
        verify_counts(db, tables, backup.manifest["rows"])
        _place_files(backup, data_dir, settings.index_dir)
        rebase_document_roots(db, Path(backup.manifest["data_dir"]) / "uploads", data_dir / "uploads")
    finally:
        db.dispose()
    notes = _settings_notes(backup, settings)
    files = len(backup.manifest["files"])
    return BackupReport(data_dir, display_url(url), method, backup.manifest["rows"],
                        backup.manifest["index_versions"], files, backup.source.stat().st_size, notes)


def _check_targets(data_dir: Path, url: str, as_file: bool, force: bool) -> None:
    if force:
        return
    if data_dir.exists() and any(data_dir.iterdir()):
        raise InvalidInput(
            f"the data dir {data_dir} is not empty; restore into a new folder (--data-dir) or pass --force "
            "to replace its database, index, uploads and settings file"
        )
    if not as_file:
        db = Database(url)
        try:
            require_empty_database(db, f"the database {display_url(url)}")
        finally:
            db.dispose()


def _clear_previous(data_dir: Path, index_dir: Path, target_file: Path | None) -> None:
    for folder in (index_dir, data_dir / "uploads"):
        shutil.rmtree(folder, ignore_errors=True)
    (data_dir / CONFIG_FILE_NAME).unlink(missing_ok=True)
    if target_file is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target_file}{suffix}").unlink(missing_ok=True)


def _restore_database(backup: UnpackedBackup, db: Database, target_file: Path | None, force: bool,
                      progress: CopyProgress | None) -> str:
    if target_file is not None:
        snapshot_sqlite(backup.database_file, target_file)
        db.migrate()  # a backup made by an older Enclave is brought to this version's schema
        return "SQLite online backup API"
    archived = Database(f"sqlite:///{backup.database_file}")
    try:
        copy_database(archived, db, progress, replace=force)
    finally:
        archived.dispose()
    return "SQLAlchemy copy of every table"


def _place_files(backup: UnpackedBackup, data_dir: Path, index_dir: Path) -> None:
    if (backup.root / "index").is_dir():
        index_dir.mkdir(parents=True, exist_ok=True)
        for folder in sorted((backup.root / "index").iterdir()):
            shutil.move(folder, index_dir / folder.name)
    if (backup.root / "uploads").is_dir():
        shutil.move(backup.root / "uploads", data_dir / "uploads")
    if backup.settings_file is not None:
        private_copy(backup.settings_file, data_dir / CONFIG_FILE_NAME)


def _settings_notes(backup: UnpackedBackup, settings: Settings) -> list[str]:
    import tomllib

    if backup.settings_file is None:
        return []
    named = tomllib.loads(backup.settings_file.read_text(encoding="utf-8")).get("database_url")
    if named == settings.database_url:
        return []
    shown = display_url(named) if named else "(SQLite in the data dir)"
    return [f"the restored {CONFIG_FILE_NAME} names database_url {shown}"
            f" but this restore wrote into {display_url(settings.db_url)}: set database_url (or ENCLAVE_DATABASE_URL)"
            " to that database before starting Enclave"]


# ---------------------------------------------------------------- moving the database


def copy_to_database(settings: Settings, target_url: str, progress: CopyProgress | None = None) -> dict[str, int]:
    """Copy the install's database into another, empty one (e.g. SQLite to PostgreSQL); returns rows per table."""
    from sqlalchemy.exc import OperationalError

    if "://" not in target_url:
        raise InvalidInput(f"{target_url!r} is not a database URL such as postgresql+psycopg://user@host/enclave")
    if target_url == settings.db_url:
        raise InvalidInput("the target is the database already in use; name a new, empty database")
    source, target = Database(settings.db_url), Database(target_url)
    try:
        return copy_database(source, target, progress)
    except OperationalError as exc:
        raise ConfigError(f"could not use {display_url(target_url)}: {exc.orig}") from exc
    finally:
        source.dispose()
        target.dispose()
