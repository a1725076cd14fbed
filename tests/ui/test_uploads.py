"""Uploads through the admin page's service: every good file kept once, every bad one listed with its reason.

The sequence from issue 20: a batch with an unsupported file among good ones, the same batch
again, then a renamed copy of a good file. Each good file is ingested once, each refusal says
why, nothing refused lingers in the upload folder, and documents and sources show the names
the files were uploaded under.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from tests.conftest import require_dataset

PARKING = "# Parking\n\nParking permits are issued by the facilities desk on Mondays.\n"
BADGES = "Lost badges are reported to security the same day, and a new badge costs ten euros.\n"
ENCRYPTED_DOCX = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600) + "EncryptionInfo".encode("utf-16-le") + bytes(600)


def upload(services: Any, files: list[tuple[Path, str]], collection: str = "facilities") -> Any:
    """Upload as the admin page does and wait for the ingest job, if one was queued."""
    result = services.web.jobs.start_upload(SYSTEM, files, collection)
    if result.job_id is not None:
        services.web.jobs.wait(result.job_id, timeout=300)
        assert services.web.jobs.job(SYSTEM, result.job_id).state == "done"
    return result


def documents(services: Any, collection: str = "facilities") -> list[str]:
    return sorted(d.path for d in services.web.library.documents(SYSTEM, collection))


def folder_files(services: Any) -> list[str]:
    """Every file under the upload folder (staging included), relative to it."""
    root = services.web.jobs.upload_dir
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def batch(tmp_path: Path) -> list[tuple[Path, str]]:
    """Good files (Markdown, text, an email) and bad ones (HEIC, a PNG called .pdf, a locked DOCX)."""
    fixtures = require_dataset("ingest-fixtures") / "unstructured" / "example-docs"
    (tmp_path / "a").write_text(PARKING)
    (tmp_path / "b").write_text(BADGES)
    (tmp_path / "c").write_bytes((fixtures / "img" / "DA-1p.png").read_bytes()[:4096])
    (tmp_path / "d").write_bytes(ENCRYPTED_DOCX)
    return [
        (tmp_path / "a", "Parking permits.md"), (fixtures / "img" / "DA-1p.heic", "DA-1p.heic"),
        (tmp_path / "b", "Badges – Überblick.txt"), (tmp_path / "c", "scan.pdf"),
        (fixtures / "eml" / "fake-email.eml", "fake-email.eml"), (tmp_path / "d", "salaries.docx"),
    ]


GOOD = ["Badges – Überblick.txt", "Parking permits.md", "fake-email.eml"]
REFUSED = {
    "DA-1p.heic": "unsupported file type .heic",
    "scan.pdf": "content is a PNG image, not a PDF",
    "salaries.docx": "password-protected DOCX file",
}


@pytest.mark.slow
def test_a_batch_uploaded_twice_then_a_renamed_copy_keeps_each_good_file_once(
    make_services: Any, batch: list[tuple[Path, str]], tmp_path: Path
) -> None:
    services = make_services()
    first = upload(services, batch)
    assert sorted(first.stored) == GOOD and dict(first.refused) == REFUSED
    assert documents(services) == GOOD
    assert folder_files(services) == [f"facilities/{name}" for name in GOOD], "nothing refused is kept"

    again = upload(services, batch)
    assert again.job_id is None and again.stored == []
    assert {name: reason for name, reason in again.refused if name not in REFUSED} == {
        name: f"same content as {name}, already in the collection" for name in GOOD
    }
    assert {name: reason for name, reason in again.refused if name in REFUSED} == REFUSED

    copy = tmp_path / "copy"
    copy.write_text(PARKING)
    renamed = upload(services, [(copy, "Copy of parking permits.md")])
    assert renamed.refused == [("Copy of parking permits.md",
                                "same content as Parking permits.md, already in the collection")]
    assert documents(services) == GOOD
    assert services.corpus.status()["collections"][0]["documents"] == len(GOOD)
    assert folder_files(services) == [f"facilities/{name}" for name in GOOD]


@pytest.mark.slow
def test_sources_and_documents_show_the_uploaded_names(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    (tmp_path / "tmp-8f2c1a").write_text(BADGES)
    upload(services, [(tmp_path / "tmp-8f2c1a", "Badge rules (2024).txt")])
    assert documents(services) == ["Badge rules (2024).txt"]
    found = services.retriever.retrieve("how much does a new badge cost", ["facilities"]).passages
    assert found and {p.chunk.file for p in found} == {"Badge rules (2024).txt"}


@pytest.mark.slow
def test_a_different_file_of_the_same_name_is_kept_beside_the_first(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    (tmp_path / "v1").write_text(PARKING)
    (tmp_path / "v2").write_text(BADGES)
    upload(services, [(tmp_path / "v1", "notes.md")])
    second = upload(services, [(tmp_path / "v2", "notes.md")])
    assert second.stored == ["notes (2).md"]
    assert documents(services) == ["notes (2).md", "notes.md"]


@pytest.mark.slow
def test_a_file_the_ingest_cannot_read_is_listed_and_not_kept(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    (tmp_path / "broken").write_bytes(b"%PDF-1.7\n this is no PDF structure at all\n")
    (tmp_path / "good").write_text(PARKING)
    result = upload(services, [(tmp_path / "broken", "minutes.pdf"), (tmp_path / "good", "parking.md")])
    job = services.web.jobs.job(SYSTEM, result.job_id)
    assert [(f.path, f.reason.split(" (")[0]) for f in job.failures] == [("minutes.pdf", "corrupt or truncated PDF")]
    assert folder_files(services) == ["facilities/parking.md"], "the unreadable file is not left to fail again"
    (tmp_path / "fixed").write_text("# Minutes\n\nThe board met on Tuesday.\n")
    assert upload(services, [(tmp_path / "fixed", "minutes.md")]).stored == ["minutes.md"]
    assert documents(services) == ["minutes.md", "parking.md"]


@pytest.mark.slow
def test_a_removed_upload_stays_removed_when_more_files_are_uploaded(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    (tmp_path / "a").write_text(PARKING)
    (tmp_path / "b").write_text(BADGES)
    upload(services, [(tmp_path / "a", "parking.md")])
    [parking] = services.web.library.documents(SYSTEM, "facilities")
    services.web.library.remove(SYSTEM, parking.id)
    upload(services, [(tmp_path / "b", "badges.txt")])
    assert documents(services) == ["badges.txt"] and folder_files(services) == ["facilities/badges.txt"]
    assert upload(services, [(tmp_path / "a", "parking.md")]).stored == ["parking.md"], "and may be uploaded again"


def test_a_batch_that_fails_part_way_keeps_none_of_its_files(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    (tmp_path / "good").write_text(PARKING)
    with pytest.raises(FileNotFoundError):  # the second file vanished before it was read
        services.web.jobs.start_upload(SYSTEM, [(tmp_path / "good", "parking.md"), (tmp_path / "gone", "x.md")],
                                       "facilities")
    assert folder_files(services) == []
    assert services.web.jobs.jobs(SYSTEM) == []


def test_the_accepted_formats_come_from_the_format_registry(make_services: Any) -> None:
    from ingest.parsers import FORMATS

    formats = dict(make_services().web.jobs.accepted_formats())
    assert formats["pdf"] == (".pdf",) and set().union(*formats.values()) == FORMATS.suffixes


@pytest.mark.slow
def test_the_admin_page_lists_every_refused_file_and_shows_the_uploaded_names(
    empty_world: Any, batch: list[tuple[Path, str]], screenshots: Path
) -> None:
    from tests.ui.test_browser import chromium, foreign_requests, shot, sign_in

    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 1100})
        context.requests = []
        context.on("request", lambda request: context.requests.append(request.url))
        page = sign_in(context, empty_world, "admin", "/admin/")
        page.wait_for_function("document.querySelector('#upload-formats')?.innerText.includes('.docx')",
                               timeout=30_000)
        page.fill("#ingest-collection input", "facilities")
        page.keyboard.press("Enter")
        page.set_input_files("#ingest-upload input[type=file]",
                             [{"name": name, "mimeType": "application/octet-stream", "buffer": path.read_bytes()}
                              for path, name in batch])
        page.wait_for_function("document.querySelectorAll('#ingest-upload .file-preview tr, "
                               "#ingest-upload tbody tr').length >= 6", timeout=30_000)
        page.click("#upload-start")
        page.wait_for_selector("#upload-result .refused", timeout=60_000)
        refused = page.inner_text("#upload-result .refused")
        assert all(f"{name}: {reason}" in refused for name, reason in REFUSED.items()), refused
        page.wait_for_selector("#ingest-progress .job[data-state=done]", timeout=120_000)
        progress = page.inner_text("#ingest-progress")
        assert all(name in progress for name in GOOD) and "3/3 files" in progress, progress
        shot(page, screenshots, "admin-upload")
        page.reload()  # the collection chooser lists collections as the page loads
        page.get_by_role("tab", name="Documents").click()
        page.wait_for_selector("#docs-table td", timeout=30_000)
        table = page.inner_text("#docs-table")
        assert all(name in table for name in GOOD), table
        assert foreign_requests(context, empty_world) == []
        context.close()
