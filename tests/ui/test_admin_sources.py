"""Sources from the API and from the admin page in Debian's Chromium: add, run, a held run and its confirmation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import World, build_world
from tests.ui.test_browser import chromium, foreign_requests, shot, sign_in


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sources")
    with FakeOllama(FakeOllamaScript()) as fake:
        built = build_world(root, embedder, fake, {}, [])
        serve(built)
        _, built.ids["token"] = built.services.web.tokens.create(SYSTEM, "admin", "sources")
        yield built
        built.services.close()


def _memos(folder: Path, *topics: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for topic in topics:
        (folder / f"{topic}.md").write_text(f"# {topic.title()}\n\nThe {topic} rule is kept by the office.\n", "utf-8")
    return folder


def _run_ended(client: httpx.Client, name: str, job: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = client.get(f"/api/sources/{name}/runs").json()
        run = next((r for r in runs if r["job"] == job), None)
        if run and run["state"] not in ("queued", "running"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"job {job} of {name} did not end")


def test_an_admin_script_adds_a_source_and_confirms_a_held_run(world: World) -> None:
    folder = _memos(world.root / "api-share", "parking", "canteen")
    headers = {"authorization": f"Bearer {world.ids['token']}"}
    with httpx.Client(base_url=world.url, headers=headers, timeout=30) as client:
        added = client.post("/api/sources", json={"name": "api-share", "folder": str(folder), "collection": "ops",
                                                  "schedule": "every 2h", "exclude": ["*.bak"]})
        assert added.status_code == 201, added.text
        assert added.json()["schedule"] == "every 2h" and added.json()["max_removal_share"] == 0.2
        first = client.get("/api/sources/api-share/runs").json()[-1]  # adding queued the first run
        assert _run_ended(client, "api-share", first["job"])["counts"]["added"] == 2
        (folder / "canteen.md").unlink()  # half the documents
        held = _run_ended(client, "api-share", client.post("/api/sources/api-share/sync").json()["job_id"])
        assert held["state"] == "held" and held["counts"]["removed"] == 0
        assert client.get("/api/sources/api-share").json()["held"] == held["reason"]
        confirmed = client.post("/api/sources/api-share/confirm")
        assert confirmed.status_code == 202
        done = _run_ended(client, "api-share", confirmed.json()["job_id"])
        assert (done["state"], done["trigger"], done["counts"]["removed"]) == ("done", "confirm", 1)
        refused = client.post("/api/sources", json={"name": "etc", "folder": "/etc", "collection": "ops"})
        assert refused.status_code == 403 and "not under a folder admins may ingest from" in refused.text
        assert client.get("/api/sources/nope").status_code == 404
        assert client.delete("/api/sources/api-share").status_code == 204
        assert client.get("/api/sources").json() == []


@pytest.mark.slow
def test_admin_adds_a_source_on_the_page_and_sees_a_held_run(world: World, screenshots: Path) -> None:
    folder = _memos(world.root / "page-share", "badges", "lockers", "printers")
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 960})
        context.requests = []
        context.on("request", lambda request: context.requests.append(request.url))
        page = sign_in(context, world, "admin", "/admin/")
        page.get_by_role("tab", name="Sources").click()
        page.wait_for_selector("#sources-table:has-text('No sources yet')", timeout=30_000)
        page.get_by_text("Add a source").click()
        page.fill("#source-name textarea", "page-share")
        page.fill("#source-folder textarea", str(folder))
        page.fill("#source-collection input", "facilities")
        page.keyboard.press("Enter")
        page.click("#source-add")
        page.wait_for_selector("#sources-table td:has-text('done: 3 added')", timeout=60_000)
        for topic in ("badges", "lockers", "printers"):
            (folder / f"{topic}.md").unlink()  # the share is unmounted: an empty folder
        page.click("#sources-sync")
        page.wait_for_selector("#sources-table .held:has-text('the share looks unmounted')", timeout=60_000)
        assert "held" in page.inner_text("#sources-history")
        assert len(world.services.web.library.documents(SYSTEM, "facilities")) == 3, "nothing removed"
        shot(page, screenshots, "admin-sources")
        assert foreign_requests(context, world) == []
        context.close()
