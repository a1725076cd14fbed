"""Paths from outside: upload names, folders typed by an admin, and symlinks inside an ingested share.

Nothing may be written outside the upload folder, read from outside the allowed ingest roots,
or followed out of the folder being ingested, whatever the name, encoding or link says.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.audit import SYSTEM, Principal
from assistant.errors import AccessError, InvalidInput, PermissionDenied
from ingest.uploads import MAX_NAME_BYTES, upload_name

HOSTILE_NAMES = [
    "../../../../etc/cron.d/evil.txt", "..\\..\\..\\Windows\\evil.md", "/etc/passwd.txt", "C:\\boot\\x.csv",
    "notes\x00.md", "..%2F..%2Fescape.md", "%2e%2e%2f%2e%2e%2fescape.md", ".hidden.md", "....md", "..",
    "a/../../b.md", "\u202egnp.md", "CON.md", "x" * 400 + ".md", "report.MD", "ok name (1).md",
]


@settings(max_examples=500, deadline=None)
@given(name=st.one_of(st.text(max_size=300), st.sampled_from(HOSTILE_NAMES),
                      st.lists(st.sampled_from(["..", "/", "\\", "\x00", ".", "%2e", "a", ".md", " "]),
                               max_size=12).map("".join)))
def test_upload_names_become_one_harmless_file_name(name: str) -> None:
    safe = upload_name(name)
    assert Path(safe).name == safe and safe not in ("", ".", "..") and not safe.startswith("."), (name, safe)
    assert "/" not in safe and "\x00" not in safe and safe.isprintable(), (name, safe)
    assert len(safe.encode()) <= MAX_NAME_BYTES and safe == safe.strip()


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.is_file()}


@pytest.mark.slow
def test_hostile_upload_names_are_stored_inside_the_collection_upload_folder(
    make_services: Any, tmp_path: Path
) -> None:
    services = make_services()
    jobs = services.web.jobs
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    supported = [n for n in HOSTILE_NAMES if upload_name(n).lower().endswith((".md", ".txt", ".csv"))]
    uploads = []
    for n, name in enumerate(supported):
        (incoming / f"{n}.bin").write_text(f"# Note {n}\n\nParking permit number {n} is issued on Mondays.\n")
        uploads.append((incoming / f"{n}.bin", name))
    before = files_under(tmp_path)
    result = jobs.start_upload(SYSTEM, uploads, "facilities")
    assert result.job_id is not None and not result.refused
    jobs.wait(result.job_id, timeout=300)
    created = files_under(tmp_path) - before
    folder = (jobs.upload_dir / "facilities").resolve()
    stored = [p for p in created if p.parent.resolve() == folder]
    assert sorted(p.name for p in stored) == sorted(result.stored) and len(stored) == len(supported)
    data_dir = services.settings.data_dir.resolve()
    assert all(p.resolve().is_relative_to(data_dir) for p in created), created - set(stored)
    assert services.corpus.status()["collections"][0]["documents"] == len(supported)


@pytest.mark.parametrize("name", ["..", "/etc/passwd", "a/../../b", "evil.sh", "x\x00.exe", "notes.md\x00.exe"])
def test_upload_names_without_a_supported_type_are_refused_and_nothing_is_kept(
    make_services: Any, tmp_path: Path, name: str
) -> None:
    jobs = make_services().web.jobs
    (tmp_path / "in.bin").write_text("# A\n\nText.\n")
    before = files_under(tmp_path)
    result = jobs.start_upload(SYSTEM, [(tmp_path / "in.bin", name)], "facilities")
    assert result.job_id is None and result.refused[0][1].startswith("unsupported file type")
    assert files_under(tmp_path) == before


@pytest.mark.parametrize("collection", ["../../escape", "/etc", "..", "a/b", "x\x00y", ""])
def test_upload_collections_that_look_like_paths_are_refused(
    make_services: Any, tmp_path: Path, collection: str
) -> None:
    jobs = make_services().web.jobs
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    with pytest.raises(InvalidInput, match="collection name"):
        jobs.start_upload(SYSTEM, [(tmp_path / "a.md", "a.md")], collection)
    assert not (jobs.upload_dir.exists() and any(jobs.upload_dir.rglob("*.md")))


def test_uploads_and_folder_ingest_are_for_admins_only(make_services: Any, tmp_path: Path) -> None:
    jobs = make_services(web={"ingest_roots": [str(tmp_path)]}).web.jobs
    user = Principal(7, "mallory", "user")
    (tmp_path / "a.md").write_text("# A\n\nText.\n")
    with pytest.raises(PermissionDenied):
        jobs.start_upload(user, [(tmp_path / "a.md", "a.md")], "hr")
    with pytest.raises(PermissionDenied):
        jobs.start_folder(user, str(tmp_path), "hr")
    with pytest.raises(AccessError):
        jobs.roots(user)


def test_admins_may_ingest_only_folders_under_the_configured_roots(make_services: Any, tmp_path: Path) -> None:
    allowed = tmp_path / "shares"
    (allowed / "hr").mkdir(parents=True)
    (tmp_path / "shares-evil").mkdir()  # shares a prefix with the root, but is not under it
    (tmp_path / "secret").mkdir()
    (allowed / "hr" / "escape").symlink_to(tmp_path / "secret", target_is_directory=True)
    jobs = make_services(web={"ingest_roots": [str(allowed)]}).web.jobs
    refused = ["/", "/etc", str(tmp_path / "secret"), str(tmp_path / "shares-evil"), f"{allowed}/hr/../../secret",
               f"{allowed}/hr/escape", str(allowed).upper(), "~", f"{allowed}/../secret"]
    for folder in refused:
        with pytest.raises(PermissionDenied, match="not under a folder admins may ingest from"):
            jobs.start_folder(SYSTEM, folder, "hr")
    for folder in (f"{allowed}/hr\x00/../../secret", "", "   "):
        with pytest.raises(InvalidInput):
            jobs.start_folder(SYSTEM, folder, "hr")
    with pytest.raises(InvalidInput, match="is not a folder"):
        jobs.start_folder(SYSTEM, f"{allowed}/hr/missing", "hr")


def test_symlinks_out_of_the_ingested_folder_are_not_followed(make_services: Any, tmp_path: Path) -> None:
    share, outside = tmp_path / "share", tmp_path / "outside"
    share.mkdir()
    outside.mkdir()
    (outside / "salaries.md").write_text("# Salaries\n\nThe chief executive earns nine million.\n")
    (share / "policy.md").write_text("# Policy\n\nParking permits are issued on Mondays.\n")
    (share / "salaries.md").symlink_to(outside / "salaries.md")
    (share / "private").symlink_to(outside, target_is_directory=True)
    (share / "passwd.txt").symlink_to("/etc/passwd")
    (share / "alias.md").symlink_to(share / "policy.md")  # inside: the file is ingested once, by its real path
    (share / "loop").symlink_to(share, target_is_directory=True)
    (share / "dangling.md").symlink_to(tmp_path / "gone.md")
    services = make_services()
    report = services.ingest.ingest(share, "hr")
    reasons = dict(report.failed)
    assert reasons == {
        "salaries.md": "symlink points outside the ingested folder",
        "private": "symlink points outside the ingested folder",
        "passwd.txt": "symlink points outside the ingested folder",
        "dangling.md": "broken symlink",
    }
    assert report.added == 1
    texts = [p.chunk.text for p in services.retriever.retrieve("chief executive salary nine million", None).passages]
    assert texts and not any("nine million" in t for t in texts)
    assert not any("root:" in t for t in texts)


def test_a_share_whose_own_path_is_a_symlink_is_read_where_it_points(make_services: Any, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (real / "a.md").write_text("# A\n\nBadges are reported lost to security.\n")
    (real / "up").symlink_to(tmp_path, target_is_directory=True)  # would reach the data dir if followed
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    report = make_services().ingest.ingest(tmp_path / "link", "hr")
    assert report.added == 1 and dict(report.failed) == {"up": "symlink points outside the ingested folder"}


def test_unreadable_files_are_reported_not_fatal(make_services: Any, tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file regardless of its mode")
    (tmp_path / "locked.md").write_text("# L\n\nx\n")
    (tmp_path / "locked.md").chmod(0)
    report = make_services().ingest.ingest(tmp_path, "hr")
    assert dict(report.failed) == {"locked.md": "permission denied"}
