"""Admin pages: ingest roots added and removed while the app runs, progress people can read, messages that
say what happened."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from assistant.audit import SYSTEM
from assistant.errors import InvalidInput, NotFoundError, PermissionDenied
from storage.job_store import FileProgress, IngestJob, JobStore
from tests.fake_ollama import FakeOllama
from tests.ui.conftest import World, build_world
from tests.ui.settings_form import PREFIX, components_by_elem_id, page_config
from tests.ui.test_api import signed_in
from ui.cli import build_cli
from ui.job_progress import duration_text, job_html

REFUSED = "not under a folder admins may ingest from"
FAST = {"settings_check_s": 0.1}  # how often a process looks for what admins saved (2 s by default)


def share(folder: Path, files: int = 2) -> Path:
    folder.mkdir(parents=True)
    for n in range(files):
        (folder / f"memo-{n:02d}.md").write_text(f"# Memo {n}\n\nRoom {n} is booked on Fridays.\n", "utf-8")
    return folder


# --- roots, at the service every app process shares ---------------------------------------------------


def test_a_root_added_in_one_process_is_ingested_from_by_another_without_a_restart(
    make_services: Any, tmp_path: Path
) -> None:
    hr = share(tmp_path / "shares" / "hr")
    adding = make_services(jobs=FAST)
    other = make_services(jobs=FAST)  # another app process on the same database
    with pytest.raises(PermissionDenied, match=f"{REFUSED}: none yet: add one on the admin page"):
        other.web.jobs.start_folder(SYSTEM, str(hr), "hr")

    added = adding.web.roots.add(SYSTEM, f"{tmp_path}/shares/")
    assert added == (tmp_path / "shares").resolve()

    job = _started_within(other, str(hr), "hr", seconds=5)
    other.web.jobs.wait(job, timeout=120)
    assert other.web.jobs.job(SYSTEM, job).summary["added"] == 2
    assert other.web.jobs.roots(SYSTEM) == [str(added)]
    events = adding.web.audit.events(SYSTEM, 10, "ingest_root_added")
    assert [(e.user, e.target) for e in events] == [("cli", str(added))]


def _started_within(services: Any, folder: str, collection: str, seconds: float) -> int:
    """Start a folder ingest as soon as this process sees the folder allowed (it re-reads saved settings)."""
    deadline = datetime.now(UTC) + timedelta(seconds=seconds)
    while True:
        try:
            return int(services.web.jobs.start_folder(SYSTEM, folder, collection))
        except PermissionDenied:
            if datetime.now(UTC) > deadline:
                raise
            time.sleep(0.05)


@pytest.mark.parametrize(("typed", "says"), [
    ("{tmp}/shares/hr/../secret", "contains '..'"),
    ("{tmp}/shares/link-out", "goes through a symbolic link to {tmp}/secret: type {tmp}/secret"),
    ("{tmp}/shares/link-out/", "goes through a symbolic link"),
    ("{tmp}/shares/missing", "does not exist on the server"),
    ("{tmp}/shares/hr/memo-00.md", "is not a folder"),
    ("shares/hr", "is not a full path"),
    ("", "type the full path of a folder"),
    ("{tmp}/shares/hr\x00", "type the full path of a folder"),
    ("{data}", "holds Enclave's own data folder"),
    ("{tmp}", "holds Enclave's own data folder"),
    ("{data}/uploads", "holds Enclave's own data folder"),
])
def test_roots_that_would_open_more_than_typed_are_refused_and_nothing_changes(
    make_services: Any, tmp_path: Path, typed: str, says: str
) -> None:
    share(tmp_path / "shares" / "hr")
    (tmp_path / "secret").mkdir()
    (tmp_path / "shares" / "link-out").symlink_to(tmp_path / "secret", target_is_directory=True)
    services = make_services(data_dir=tmp_path / "data")
    (tmp_path / "data" / "uploads").mkdir(exist_ok=True)
    roots = services.web.roots
    values = {"tmp": str(tmp_path), "data": str(services.settings.data_dir)}
    with pytest.raises(InvalidInput) as refused:
        roots.add(SYSTEM, typed.format(**values))
    assert says.format(**values) in str(refused.value)
    assert roots.folders(SYSTEM) == []
    assert services.web.audit.events(SYSTEM, 10, "ingest_root_added") == []


def test_roots_changed_at_the_shell_reach_a_running_process(make_services: Any, tmp_path: Path) -> None:
    hr = share(tmp_path / "shares" / "hr")
    running = make_services(jobs={**FAST, "in_process_worker": False})
    data = ["--data-dir", str(running.settings.data_dir)]
    cli = build_cli()
    added = CliRunner().invoke(cli, ["roots", "add", f"{tmp_path}/shares", *data])
    assert added.exit_code == 0 and f"added {tmp_path / 'shares'}" in added.output, added.output
    _started_within(running, str(hr), "hr", seconds=5)
    listed = CliRunner().invoke(cli, ["roots", "list", "--json", *data])
    assert json.loads(listed.output) == {"roots": [str(tmp_path / "shares")]}

    refused = CliRunner().invoke(cli, ["roots", "add", f"{tmp_path}/shares/../shares", *data])
    assert refused.exit_code == 1 and "contains '..'" in refused.output
    removed = CliRunner().invoke(cli, ["roots", "remove", f"{tmp_path}/shares", *data])
    assert removed.exit_code == 0, removed.output
    again = CliRunner().invoke(cli, ["roots", "remove", f"{tmp_path}/shares", *data])
    assert again.exit_code == 1 and "is not a folder admins may ingest from" in again.output


def test_a_folder_already_open_is_not_added_twice(make_services: Any, tmp_path: Path) -> None:
    share(tmp_path / "shares" / "hr")
    roots = make_services(web={"ingest_roots": [str(tmp_path / "shares")]}).web.roots
    with pytest.raises(InvalidInput, match="already open to ingest, as part of"):
        roots.add(SYSTEM, str(tmp_path / "shares" / "hr"))
    assert roots.folders(SYSTEM) == [str(tmp_path / "shares")]


def test_a_removed_root_is_refused_in_every_process_and_its_documents_stay(
    make_services: Any, tmp_path: Path
) -> None:
    hr = share(tmp_path / "shares" / "hr")
    configured = {"ingest_roots": [str(tmp_path / "shares")]}  # from enclave.toml: admins may remove it too
    removing = make_services(web=configured, jobs=FAST)
    other = make_services(web=configured, jobs=FAST)
    first = other.web.jobs.start_folder(SYSTEM, str(hr), "hr")
    other.web.jobs.wait(first, timeout=120)

    assert removing.web.roots.remove(SYSTEM, f"{tmp_path}/shares/") == tmp_path / "shares"
    deadline = datetime.now(UTC) + timedelta(seconds=5)
    while str(tmp_path / "shares") in other.web.jobs.roots(SYSTEM):
        assert datetime.now(UTC) < deadline, "the other process never saw the root go"
        time.sleep(0.05)
    with pytest.raises(PermissionDenied, match=f"{REFUSED}: none yet"):
        other.web.jobs.start_folder(SYSTEM, str(hr), "hr")
    assert other.corpus.status()["collections"][0]["documents"] == 2
    assert [e.target for e in removing.web.audit.events(SYSTEM, 10, "ingest_root_removed")] == [
        str(tmp_path / "shares")]
    with pytest.raises(NotFoundError, match="is not a folder admins may ingest from; those are: none"):
        removing.web.roots.remove(SYSTEM, str(tmp_path / "shares"))


def test_saving_the_answering_settings_keeps_the_roots_admins_added(make_services: Any, tmp_path: Path) -> None:
    share(tmp_path / "shares" / "hr")
    web = make_services().web
    added = web.roots.add(SYSTEM, str(tmp_path / "shares"))
    web.runtime.change(SYSTEM, "auto", 7, {})
    assert web.runtime.current().top_k == 7
    assert web.roots.folders(SYSTEM) == [str(added)]


def test_the_refusal_lists_the_roots_not_the_upload_folder(make_services: Any, tmp_path: Path) -> None:
    share(tmp_path / "shares" / "hr")
    (tmp_path / "elsewhere").mkdir()
    jobs = make_services(web={"ingest_roots": [str(tmp_path / "shares")]}).web.jobs
    with pytest.raises(PermissionDenied) as refused:
        jobs.start_folder(SYSTEM, str(tmp_path / "elsewhere"), "hr")
    assert str(refused.value).endswith(f"{REFUSED}: {tmp_path / 'shares'}")


# --- progress -------------------------------------------------------------------------------------------


class Recorded:
    """An IngestProgress that keeps every call, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def started(self, total_files: int) -> None:
        self.calls.append(("started", str(total_files)))

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        self.calls.append(("done", path))

    def doing(self, what: str) -> None:
        self.calls.append(("doing", what))


def test_the_pipeline_says_which_file_it_parses_before_any_file_is_done(make_services: Any, tmp_path: Path) -> None:
    folder = share(tmp_path / "hr", files=3)
    recorded = Recorded()
    make_services().ingest.ingest(folder, "hr", progress=recorded)
    calls = recorded.calls
    first_done = next(n for n, (kind, _) in enumerate(calls) if kind == "done")
    steps = [what for kind, what in calls[:first_done] if kind == "doing"]
    assert "parsing memo-00.md" in steps, calls
    for name in ("memo-00.md", "memo-01.md", "memo-02.md"):
        assert calls.index(("doing", f"parsing {name}")) < calls.index(("done", name))


def test_a_running_jobs_step_is_stored_for_every_process_and_gone_once_it_ends(
    make_services: Any, tmp_path: Path
) -> None:
    services = make_services(jobs={"in_process_worker": False}, web={"ingest_roots": [str(tmp_path)]})
    folder = share(tmp_path / "hr")
    job_id = services.web.jobs.start_folder(SYSTEM, str(folder), "hr")
    store = JobStore(services.db)
    claimed = store.claim("test-worker")
    assert claimed is not None and claimed.id == job_id
    store.set_now(job_id, "parsing memo-00.md")
    assert services.web.jobs.job(SYSTEM, job_id).now == "parsing memo-00.md"
    store.finish(job_id, "done", {"added": 2, "seconds": 1.5})
    ended = services.web.jobs.job(SYSTEM, job_id)
    assert ended.now == "" and ended.summary["added"] == 2


def test_progress_shows_the_step_at_once_every_file_and_times_people_read() -> None:
    started = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    files = tuple(FileProgress(f"memo-{n:02d}.md", "added", 3) for n in range(30))
    running = IngestJob(id=4, collection="hr", source="/srv/shares/hr", state="running", total=30, done=0,
                        now="parsing memo-00.md", started=started)
    html = job_html(running, now=started + timedelta(seconds=21))
    assert "Now: parsing memo-00.md" in html and "0/30 files" in html and "running for 21 s" in html

    done = IngestJob(id=4, collection="hr", source="/srv/shares/hr", state="done", total=30, done=30, files=files,
                     summary={"added": 30, "updated": 0, "unchanged": 0, "removed": 0, "renamed": 0,
                              "documents": 30, "chunks": 90, "seconds": 82.585},
                     started=started, finished=started + timedelta(seconds=83))
    html = job_html(done)
    assert all(f"memo-{n:02d}.md" in html for n in range(30)), "every file is listed"
    assert "took 1 min 23 s" in html and "82.5" not in html and "seconds" not in html
    assert "Now:" not in html


@pytest.mark.parametrize(("seconds", "said"), [
    (0.2, "under 1 s"), (42.4, "42 s"), (82.585, "1 min 23 s"), (120, "2 min"), (7500, "2 h 5 min"), (3600, "1 h"),
])
def test_durations_read_as_people_say_them(seconds: float, said: str) -> None:
    assert duration_text(seconds) == said


# --- the admin page over HTTP ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("admin-roots")
    share(root / "hr")
    with FakeOllama() as fake:
        built = build_world(root / "site", embedder, fake, {"hr": root / "hr"}, [],
                            web={"ingest_roots": []})
        built.ids["shares"] = root
        serve(built)
        yield built
        built.services.close()


def press(client: httpx.Client, elem_id: str, data: list[Any]) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """Trigger a component's event as the page does: what the page then shows (by elem_id), the messages
    shown to the admin, and the completion message."""
    config = page_config(client)
    component = components_by_elem_id(config)[elem_id]["id"]
    event = next(d for d in config["dependencies"] if any(t[0] == component for t in d["targets"]))
    session = secrets.token_hex(8)
    body = {"data": data, "event_data": None, "fn_index": event["id"], "trigger_id": None, "session_hash": session}
    assert client.post(f"{PREFIX}/gradio_api/queue/join", json=body).status_code == 200
    said: list[str] = []
    with client.stream("GET", f"{PREFIX}/gradio_api/queue/data", params={"session_hash": session},
                       timeout=60) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "log":
                said.append(message["log"])
            if message.get("msg") == "process_completed":
                names = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
                shown = dict(zip((names[i] for i in event["outputs"]), message["output"].get("data", []),
                                 strict=False))
                return shown, said, message
    raise AssertionError("the event never completed")


def test_admins_add_and_remove_roots_on_the_page_and_are_told_what_happened(world: World) -> None:
    folder = world.ids["shares"] / "hr"
    with signed_in(world, "admin") as admin:
        shown, said, done = press(admin, "root-add", [f"{folder}/"])
        assert done["success"], done
        assert said == [f"Added {folder}: admins may ingest from it and its subfolders now, in every app process."]
        assert str(folder) in shown["ingest-roots"] and shown["root-path"] == ""

        shown, said, done = press(admin, "root-add", [f"{folder}/../hr"])
        assert not done["success"] and "contains '..'" in str(done["output"].get("error"))

        shown, said, done = press(admin, "root-remove", [str(folder)])
        assert done["success"] and said[0].startswith(f"Removed {folder}")
        assert str(folder) not in shown["ingest-roots"] and "no server folder yet" in shown["ingest-roots"]


def test_access_actions_say_what_they_did_and_tables_say_yes_or_no(world: World) -> None:
    with signed_in(world, "admin") as admin:
        shown, said, done = press(admin, "add-group", ["", "finance", ""])
        assert done["success"] and said == ["Added group finance"]
        shown, said, done = press(admin, "grant", ["", "finance", "hr"])
        assert said == ["Granted hr to group finance: its members may read it now"]
        assert "finance" in shown["groups-table"]
        shown, said, done = press(admin, "disable-user", ["bob", "", "user"])
        assert said == ["Disabled bob: they can no longer sign in"]
        cells = shown["users-table"]
        assert "<td>no</td>" in cells and "<td>yes</td>" in cells
        assert "True" not in cells and "False" not in cells
