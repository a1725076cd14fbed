"""The admin Quality tab over HTTP, and the install's own QA set from `run.py quality export` run by `run.py eval`."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from assistant.chats import Saved
from tests.conftest import PROJECT_ROOT
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world
from tests.ui.settings_form import call, components_by_elem_id, page_config
from tests.ui.test_api import signed_in
from tests.ui.test_browser import chromium, sign_in

NOT_THERE = "Who is the CEO of Contoso Electronics?"
FLIGHTS = "Which class do employees fly on flights under six hours?"


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    """hr holds a travel policy; alice asked a question it cannot answer, and rated another answer down."""
    root = tmp_path_factory.mktemp("quality-page")
    (root / "hr").mkdir()
    (root / "hr" / "travel.md").write_text(
        "# Travel\n\nEmployees fly economy class on flights under six hours. Business class needs approval.\n")
    with FakeOllama(FakeOllamaScript(reply="Employees fly economy class [1].")) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"])
        web = built.services.web
        alice = web.accounts.sign_in("alice", PASSWORDS["alice"])[0]
        for question in (NOT_THERE, FLIGHTS):
            saved = list(web.chats.ask(alice, None, question, ["hr"]))[-1]
            assert isinstance(saved, Saved)
            built.ids[question] = saved.message.id
        web.chats.feedback(alice, built.ids[FLIGHTS], False, "business class is missing")
        serve(built)
        yield built
        built.services.close()


def _event(config: dict[str, Any], elem_id: str, trigger: str) -> dict[str, Any]:
    """The page event that ``trigger`` (click, change, ...) on the component ``elem_id`` runs."""
    component = components_by_elem_id(config)[elem_id]["id"]
    return next(d for d in config["dependencies"] if [component, trigger] in d["targets"])


def _run(client: httpx.Client, config: dict[str, Any], elem_id: str, trigger: str, values: list[Any]) -> list[Any]:
    """Run an event of the page opened as ``config`` (one session: a choice offered earlier stays valid)."""
    done = call(client, _event(config, elem_id, trigger)["id"], values, session=config["session"])
    assert done["success"], done
    return [v["value"] if isinstance(v, dict) and "value" in v else v for v in done["output"]["data"]]


def test_admins_see_what_the_documents_miss_and_write_the_expected_answer(world: World) -> None:
    with signed_in(world, "admin") as admin:
        config = {**page_config(admin), "session": secrets.token_hex(8)}
        _, figures, problems, _ = _run(admin, config, "quality-refresh", "click", [""])
        assert "hr" in figures and "50%" in figures, "one of hr's two questions was refused"
        assert NOT_THERE in problems and FLIGHTS in problems and "travel.md" in problems
        assert "business class is missing" in problems

        page, _, missing = _run(admin, config, "quality-question", "change", [world.ids[FLIGHTS]])
        assert page == "travel.md" and missing is False, "the question's source is offered as its page"
        _, _, problems, _ = _run(admin, config, "quality-save", "click",
                                 [world.ids[FLIGHTS], page, "Economy class under six hours.", False, ""])
        assert "Economy class under six hours." in problems
        _, _, problems, _ = _run(admin, config, "quality-save", "click", [world.ids[NOT_THERE], "", "", True, ""])
        assert "not in the documents" in problems

        (download,) = _run(admin, config, "quality-export", "click", [""])
        assert download["path"].endswith("enclave-qa.zip")


def test_the_audit_filter_offers_every_kind_of_event_including_the_quality_and_model_ones(world: World) -> None:
    with signed_in(world, "admin") as admin:
        audit_filter = components_by_elem_id(page_config(admin))["audit-action"]
    offered = {choice[0] if isinstance(choice, list) else choice for choice in audit_filter["props"]["choices"]}
    assert {"expected_answer_saved", "quality_exported", "model_chosen", "model_added", "sign_in"} <= offered


def test_a_plain_user_is_refused_the_quality_tab(world: World) -> None:
    with signed_in(world, "admin") as admin:
        event = _event(page_config(admin), "quality-refresh", "click")
    with signed_in(world, "alice") as alice:
        assert alice.get("/admin/config").status_code == 403
        joined = alice.post("/admin/gradio_api/queue/join", json={"data": [""], "fn_index": event["id"],
                                                                   "session_hash": "x"})
        assert joined.status_code == 403


def _cli(*args: str) -> Any:
    done = subprocess.run([sys.executable, "run.py", *args, "--json"], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_exported_qa_set_runs_through_eval(world: World, tmp_path: Path) -> None:
    web = world.services.web
    web.quality.save_expected(SYSTEM, world.ids[FLIGHTS], "Economy class under six hours.", "travel.md")
    web.quality.save_expected(SYSTEM, world.ids[NOT_THERE], "", "", not_in_documents=True)
    exported = _cli("quality", "export", str(tmp_path / "qa"), "--collection", "hr",
                    "--data-dir", str(world.services.settings.data_dir))
    assert (exported["questions"], exported["unanswerable"], exported["documents"]) == (2, 1, 1)

    report = _cli("eval", str(tmp_path / "qa"), "--retrieve-only", "--data-dir", str(tmp_path / "eval"))
    assert report["questions"] == 2 and report["retrieval"]["file_recall@1"] == 1.0
    assert set(report["by_type"]) == {"marked_down", "refused"}


@pytest.mark.slow
def test_an_admin_writes_the_expected_answer_in_a_browser(world: World, screenshots: Path) -> None:
    """On the tab as a person uses it: choose the listed question, its page is offered, write, save, see it."""
    with chromium() as browser:
        page = sign_in(browser.new_context(viewport={"width": 1440, "height": 960}), world, "admin", "/admin/")
        page.get_by_role("tab", name="Quality").click()
        page.wait_for_selector(f"#quality-problems td:has-text('{NOT_THERE}')", timeout=30_000)
        page.click("#quality-question input")
        page.get_by_role("option", name=f"{world.ids[FLIGHTS]}: {FLIGHTS}").click()
        page.wait_for_function("document.querySelector('#quality-page input').value === 'travel.md'",
                               timeout=30_000)
        page.fill("#quality-answer textarea", "Economy class, on flights under six hours.")
        page.click("#quality-save")
        page.wait_for_selector("#quality-problems td:has-text('Economy class, on flights under six hours.')",
                               timeout=30_000)
        assert page.input_value("#quality-question input").startswith(f"{world.ids[FLIGHTS]}: "), "still chosen"
        page.click("#quality-export")
        link = page.wait_for_selector("#quality-download a[download='enclave-qa.zip']", timeout=30_000)
        zipped = page.request.get(link.get_attribute("href"))
        assert zipped.ok and zipped.body().startswith(b"PK"), "the QA set downloads as a zip"
        page.screenshot(path=str(screenshots / "admin-quality.png"), full_page=True)
