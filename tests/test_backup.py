"""Backups, restores and moving to PostgreSQL, as an admin runs them: through ``run.py``.

The check that matters to users: after a restore (or a move to PostgreSQL) the same
question finds the same passages (file, page, text), accounts still sign in, and uploaded
originals can still be opened. A damaged archive is refused with a clear message and
changes nothing.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from assistant.events import Done
from tests.conftest import PROJECT_ROOT, postgres_url, require_dataset
from tests.storage.conftest import _fresh_postgres_database

pytestmark = pytest.mark.slow

QUESTION = "What can employees be reimbursed for under PerksPlus?"
PASSWORD = "correct horse battery"


def run_cli(*args: str, database_url: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENCLAVE_")}
    if database_url:
        env["ENCLAVE_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "run.py", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def ok(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout) if proc.stdout.startswith("{") else proc.stdout


def sources(data_dir: Path, database_url: str | None = None) -> list[tuple[str, int | None, str]]:
    """What a retrieve-only ``ask --json`` found: file, page and text of each passage."""
    answer = ok(run_cli("ask", QUESTION, "--retrieve-only", "--json", "--data-dir", str(data_dir),
                        database_url=database_url))
    return [(p["file"], p["page"], p["text"]) for p in answer["retrieved"]]


@pytest.fixture(scope="module")
def install(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> dict[str, Any]:
    """A SQLite install: two documents, one uploaded file, a settings file, a user with a chat."""
    from assistant.services import build_services
    from assistant.settings import load_settings
    from storage.chat_store import ChatStore

    contoso = require_dataset("contoso-hr") / "docs"
    root = tmp_path_factory.mktemp("install")
    docs, data = root / "docs", root / "data"
    docs.mkdir()
    for name in ("PerksPlus.pdf", "Contoso_Electronics_Company_Overview.md"):
        shutil.copy(contoso / name, docs / name)
    upload = data / "uploads" / "products" / "product_info_1.md"
    upload.parent.mkdir(parents=True)
    shutil.copy(contoso / "product_info_1.md", upload)
    (data / "enclave.toml").write_text("[retrieval]\ntop_k = 4\n", encoding="utf-8")
    services = build_services(load_settings(data_dir=data), embedder=embedder)
    try:
        services.ingest.ingest(docs)
        services.ingest.ingest(upload.parent, "products")  # as the web app ingests an upload
        services.web.accounts.create_user(SYSTEM, "alice", PASSWORD)
        alice, _token = services.web.accounts.sign_in("alice", PASSWORD)
        assert alice.id is not None
        chats = ChatStore(services.db)
        chats.add_message(chats.create(alice.id, "Perks question", ["default"]), QUESTION, "An answer.", "test", {})
    finally:
        services.close()
    return {"data": data, "upload": upload, "sources": sources(data)}


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A new, empty database on the test PostgreSQL server (dropped afterwards)."""
    yield from _fresh_postgres_database(postgres_url())


@pytest.fixture
def second_pg_database() -> Iterator[str]:
    """Another new, empty database on the same server."""
    yield from _fresh_postgres_database(postgres_url())


def _open(data_dir: Path, embedder: Any, database_url: str | None = None) -> Any:
    from assistant.services import build_services
    from assistant.settings import load_settings

    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    return build_services(load_settings(data_dir=data_dir, **overrides), embedder=embedder)


def _signs_in_with_chat(data_dir: Path, embedder: Any, database_url: str | None = None) -> None:
    services = _open(data_dir, embedder, database_url)
    try:
        alice, _token = services.web.accounts.sign_in("alice", PASSWORD)
        assert [c.title for c in services.web.chats.chats(alice)] == ["Perks question"]
        services.web.accounts.create_user(SYSTEM, "bob", PASSWORD)  # new ids do not collide with copied ones
        bob, _token = services.web.accounts.sign_in("bob", PASSWORD)
        assert bob.id != alice.id
    finally:
        services.close()


@pytest.fixture(scope="module")
def archive(install: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the SQLite install, made with ``run.py backup``."""
    path = tmp_path_factory.mktemp("backup") / "enclave.tar.gz"
    made = ok(run_cli("backup", str(path), "--json", "--data-dir", str(install["data"])))
    assert made["db_method"] == "SQLite online backup API" and made["index_versions"]
    assert made["rows"]["users"] == 1 and made["rows"]["chats"] == 1 and made["rows"]["chunks"] > 0
    return path


def test_sqlite_backup_restores_sources_settings_users_and_uploads(
    archive: Path, install: dict[str, Any], tmp_path: Path, embedder: Any
) -> None:
    restored = tmp_path / "restored"
    ok(run_cli("restore", str(archive), "--json", "--data-dir", str(restored)))

    assert len(install["sources"]) == 4  # top_k from the settings file
    assert sources(restored) == install["sources"]
    assert (restored / "enclave.toml").read_text(encoding="utf-8") == "[retrieval]\ntop_k = 4\n"
    _signs_in_with_chat(restored, embedder)
    services = _open(restored, embedder)
    try:
        uploaded = next(d for d in services.web.library.documents(SYSTEM) if d.collection == "products")
        original = services.web.library.original_file(SYSTEM, uploaded.id)
        assert original.is_relative_to(restored.resolve() / "uploads")
        assert original.read_bytes() == install["upload"].read_bytes()
    finally:
        services.close()


def test_restore_refuses_a_data_dir_that_is_not_empty(archive: Path, install: dict[str, Any], tmp_path: Path,
                                                      embedder: Any) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("keep me", encoding="utf-8")
    proc = run_cli("restore", str(archive), "--data-dir", str(occupied))
    assert proc.returncode == 1 and "is not empty" in proc.stderr and "--force" in proc.stderr
    assert [p.name for p in occupied.iterdir()] == ["notes.txt"]
    ok(run_cli("restore", str(archive), "--force", "--data-dir", str(occupied)))
    services = _open(occupied, embedder)
    try:
        final = next(e.answer for e in services.answers.ask(QUESTION, retrieve_only=True) if isinstance(e, Done))
    finally:
        services.close()
    assert [(p["file"], p["page"], p["text"]) for p in final.as_json()["retrieved"]] == install["sources"]


def test_damaged_backups_are_refused_and_change_nothing(archive: Path, install: dict[str, Any], tmp_path: Path) -> None:
    good = archive
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    altered = _with_altered_database(good, tmp_path / "altered.tar.gz")
    not_a_backup = tmp_path / "notes.tar.gz"
    with tarfile.open(not_a_backup, "w:gz") as tar:
        tar.add(install["upload"], "notes.md")
    newer = _with_altered_database(good, tmp_path / "newer.tar.gz", schema="9999_from_the_future")
    cases = {truncated: "damaged or incomplete", altered: "database/enclave.db does not match its SHA-256",
             not_a_backup: "no manifest", newer: "written by a newer Enclave (database schema 9999_from_the_future)"}
    for archive, message in cases.items():
        target = tmp_path / f"restore-{archive.stem}"
        proc = run_cli("restore", str(archive), "--data-dir", str(target))
        assert proc.returncode == 1, proc.stderr
        assert message in proc.stderr and ("nothing was restored" in proc.stderr or archive == newer), proc.stderr
        assert "Traceback" not in proc.stderr
        assert not target.exists()


def _with_altered_database(good: Path, dest: Path, schema: str | None = None) -> Path:
    """The same archive with one byte of the database changed, or (``schema``) a manifest naming another schema."""
    with tarfile.open(good, "r:gz") as src, tarfile.open(dest, "w:gz") as out:
        for member in src.getmembers():
            data = src.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == "database/enclave.db" and schema is None:
                data = data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
            if member.name == "manifest.json" and schema is not None:
                data = json.dumps({**json.loads(data), "schema_revision": schema}).encode()
                member.size = len(data)
            out.addfile(member, io.BytesIO(data))
    return dest


def moved_to_postgres(install: dict[str, Any], tmp_path: Path, url: str) -> Path:
    """A copy of the install moved to PostgreSQL the documented way: copy-database, then set database_url."""
    data = tmp_path / "pg-install"
    shutil.copytree(install["data"], data)
    out = ok(run_cli("copy-database", "--to", url, "--data-dir", str(data)))
    assert "database_url" in out and "row counts verified" in out
    settings = data / "enclave.toml"
    settings.write_text(f'database_url = "{url}"\n' + settings.read_text(encoding="utf-8"), encoding="utf-8")
    return data


@pytest.mark.postgres
def test_copy_database_moves_a_sqlite_install_to_postgres(
    install: dict[str, Any], tmp_path: Path, pg_database: str, embedder: Any
) -> None:
    data = moved_to_postgres(install, tmp_path, pg_database)
    (data / "enclave.db").unlink()  # from now on everything must come from PostgreSQL
    assert sources(data) == install["sources"]
    _signs_in_with_chat(data, embedder)
    assert not (data / "enclave.db").exists()
    proc = run_cli("copy-database", "--to", pg_database, "--data-dir", str(install["data"]))
    assert proc.returncode == 1 and "already holds data" in proc.stderr and "users (2 rows)" in proc.stderr


@pytest.mark.postgres
def test_postgres_backup_restores_into_a_second_database(
    install: dict[str, Any], tmp_path: Path, pg_database: str, second_pg_database: str, embedder: Any
) -> None:
    data = moved_to_postgres(install, tmp_path, pg_database)
    archive, restored = tmp_path / "pg.tar.gz", tmp_path / "restored"
    made = ok(run_cli("backup", str(archive), "--json", "--data-dir", str(data)))
    assert "REPEATABLE READ" in made["db_method"] and made["rows"]["users"] == 1
    done = ok(run_cli("restore", str(archive), "--json", "--data-dir", str(restored), database_url=second_pg_database))
    assert any("database_url" in note for note in done["notes"])  # the archived settings name the first database
    assert sources(restored, second_pg_database) == install["sources"]
    _signs_in_with_chat(restored, embedder, second_pg_database)
    proc = run_cli("restore", str(archive), "--data-dir", str(tmp_path / "again"), database_url=second_pg_database)
    assert proc.returncode == 1 and "already holds data" in proc.stderr
    assert not (tmp_path / "again").exists()


def test_backups_taken_during_an_ingest_restore_to_a_consistent_install(
    install: dict[str, Any], tmp_path: Path, embedder: Any
) -> None:
    from assistant.backup import create_backup
    from assistant.settings import load_settings

    live = tmp_path / "live"
    shutil.copytree(install["data"], live)
    errors: list[BaseException] = []

    def ingest_one_file_at_a_time() -> None:
        services = _open(live, embedder)
        try:
            for n in (2, 3, 4, 5):  # each ingest commits and writes a new index version
                folder = tmp_path / f"more-{n}"
                folder.mkdir()
                shutil.copy(require_dataset("contoso-hr") / "docs" / f"product_info_{n}.md", folder)
                services.ingest.ingest(folder)
        except BaseException as exc:  # re-raised in the test's thread below
            errors.append(exc)
            raise
        finally:
            services.close()

    writer = threading.Thread(target=ingest_one_file_at_a_time)
    writer.start()
    archives: list[Path] = []

    def backup() -> None:
        archives.append(create_backup(load_settings(data_dir=live), tmp_path / f"b-{len(archives):03d}.tar.gz").path)

    while writer.is_alive():
        backup()
        time.sleep(0.2)
    writer.join()
    assert not errors, errors
    backup()  # and one after the ingest finished
    sample = list(dict.fromkeys(archives[:: max(1, len(archives) // 6)] + archives[-1:]))
    documents = [_restored_documents(archive, tmp_path, embedder) for archive in sample]
    print(f"{len(archives) - 1} backups during the ingest; documents in {len(sample)} restored: {documents}")
    assert documents[-1] == 7 and documents == sorted(documents) and len(set(documents)) >= 2


def _restored_documents(archive: Path, tmp_path: Path, embedder: Any) -> int:
    """Restore an archive; check every index came back whole and agrees with the database; count documents."""
    from assistant.backup import restore_backup, unpack_backup
    from assistant.settings import load_settings

    restored = tmp_path / f"restored-{archive.name}"
    with unpack_backup(archive) as unpacked:
        restore_backup(unpacked, load_settings(data_dir=restored, config_file=unpacked.settings_file))
    services = _open(restored, embedder)
    try:
        for cid in services.corpus.store.collections():
            index = services.corpus.index(cid)
            assert index.repair.rebuilt_reason is None, archive  # the archived version was whole, not torn
            # A backup taken mid-ingest holds chunks written for keyword search and not yet embedded.
            embedded = services.corpus.store.chunk_ids(cid, embedded=True).tolist()
            assert set(index.vectors.ids().tolist()) == set(embedded)
            assert set(index.bm25.ids().tolist()) == set(services.corpus.store.chunk_ids(cid).tolist())
        return int(services.corpus.status()["documents"])
    finally:
        services.close()
