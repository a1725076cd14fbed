"""The employee's chat page in Chromium: one question at a time, Markdown rendered yet inert, thumbs, delete, hints.

One world serves every test here (browser tests are slow): an hr collection of a Markdown
perks page and a hostile text file, granted to alice's group; bob reads nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import PASSWORDS, World, build_world
from tests.ui.test_browser import CHROMIUM, INJECTED, browser, context, foreign_requests, shot, sign_in

pytestmark = pytest.mark.slow
__all__ = ["browser", "context"]  # the shared browser fixtures, used by name

PERKS = (
    "# PerksPlus\n\n## Vacation Perks\n\nEmployees receive twenty vacation days a year, and four wellness days.\n\n"
    "| Perk | Yearly amount |\n|---|---|\n| Gym membership | 400 dollars |\n| Bicycle repairs | 150 dollars |\n"
)
MARKDOWN_ANSWER = (
    "## Vacation Perks\n\nEmployees receive twenty vacation days a year [1].\n\n"
    "| Perk | Yearly amount |\n|---|---|\n| Gym membership | 400 dollars |\n\n"
    "<script>window.__pwned='answer'</script> <img src=x onerror=\"window.__pwned='img'\"> "
    "![t](http://evil.example/answer.png) [more](javascript:window.__pwned='link')\n\n"
    "PerksPlus also gives employees four wellness days a year [1]. The gym membership is repaid up to 400 dollars "
    "a year [1]. Bicycle repairs are repaid up to 150 dollars a year [1]."
)

# Records what the page's live regions say (Gradio clears each announcement after a second).
LISTEN = """
window.__spoken = [];
new MutationObserver(() => {
  for (const region of document.querySelectorAll('[aria-live]')) {
    const text = region.textContent.trim();
    if (text && window.__spoken.at(-1) !== text) window.__spoken.push(text);
  }
}).observe(document, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    if not CHROMIUM.is_file():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    root = tmp_path_factory.mktemp("chat-page")
    (root / "hr").mkdir()
    (root / "hr" / "perks.md").write_text(PERKS, encoding="utf-8")
    (root / "hr" / "meals.txt").write_text(INJECTED, encoding="utf-8")
    with FakeOllama(FakeOllamaScript(reply=MARKDOWN_ANSWER, token_delay_s=0.05)) as fake:
        built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"])
        serve(built)
        yield built
        built.services.close()


def alices_chats(world: World) -> list[Any]:
    alice, _ = world.services.web.accounts.sign_in("alice", PASSWORDS["alice"])
    return world.services.web.chats.chats(alice)


def answered(page: Any, turns: int) -> None:
    """Wait until ``turns`` answers are saved and shown, and Ask takes the next question."""
    page.wait_for_function(f"document.querySelectorAll('#transcript .turn .rate').length === {turns}",
                           timeout=60_000)
    page.wait_for_selector("#ask:not([disabled])", timeout=30_000)


def test_a_question_asked_while_an_answer_streams_waits_and_joins_the_same_conversation(
        context: Any, world: World) -> None:
    context.add_init_script(LISTEN)
    page = sign_in(context, world, "alice")
    box = page.get_by_role("textbox", name="Your question")
    box.wait_for(timeout=30_000)
    box.fill("How many vacation days do employees get under PerksPlus?")
    page.click("#ask")
    page.wait_for_selector("#transcript #turn-live", timeout=30_000)
    assert page.locator("#ask").is_disabled(), "Ask waits for the answer being written"
    box.fill("And how much for the gym?")
    box.press("Enter")
    answered(page, 1)
    assert box.input_value() == "And how much for the gym?", "the second question is still in the box"
    page.wait_for_function("!document.querySelector('#ask').disabled", timeout=10_000)
    page.click("#ask")
    answered(page, 2)
    chats = alices_chats(world)
    assert len(chats) == 1 and page.locator("#chat-list input[type=radio]").count() == 1
    questions = page.locator("#transcript .turn .question").all_inner_texts()
    assert questions == ["How many vacation days do employees get under PerksPlus?", "And how much for the gym?"]
    too_long = "Why? " * 801  # over the 4,000 characters a question may have: refused, and kept
    box.fill(too_long)
    page.click("#ask")
    page.wait_for_function("document.body.innerText.includes('ask a question of 1 to 4000 characters')",
                           timeout=30_000)
    page.wait_for_function("!document.querySelector('#ask').disabled", timeout=10_000)
    assert box.input_value() == too_long, "a question that failed comes back into the box"
    page.wait_for_function("window.__spoken.length > 0", timeout=15_000)  # Gradio speaks at most every 5 s
    spoken = page.evaluate("window.__spoken")
    assert not [s for s in spoken if "common." in s], f"the live region speaks words, not translation keys: {spoken}"


def test_markdown_renders_in_answers_cards_and_the_viewer_while_hostile_text_stays_inert(
        context: Any, world: World, screenshots: Path) -> None:
    page = sign_in(context, world, "alice")
    page.on("dialog", lambda dialog: pytest.fail(f"a dialog opened: {dialog.message}"))
    page.fill("#question textarea", "Which vacation perks does PerksPlus give?")
    page.click("#ask")
    answered(page, 1)
    answer = page.locator("#transcript .answer")
    assert answer.locator("h2").inner_text().startswith("Vacation Perks") and "##" not in answer.inner_text()
    assert answer.locator("table td").first.inner_text() == "Gym membership"
    assert "<script>" in answer.inner_text(), "raw HTML is shown as the characters it is"
    card = page.locator("#sources .source:has-text('perks.md')").first
    assert card.locator(".passage h2, .passage table").count() >= 1, card.inner_text()
    shot(page, screenshots, "chat-markdown")
    with context.expect_page() as opened:
        card.locator("a.open-doc").click()
    viewer = opened.value
    viewer.wait_for_load_state()
    assert viewer.locator(".page-text h2").first.inner_text() == "Vacation Perks"
    assert viewer.locator(".page-text table").count() == 1 and "|---|" not in viewer.inner_text(".page-text")
    for shown in (page, viewer):
        assert shown.evaluate("window.__pwned") is None
        assert shown.locator("#transcript script, #sources script, main script").count() == 0
        assert shown.locator("img[src*='evil.example'], a[href^='javascript'], [onerror]").count() == 0
    assert foreign_requests(context, world) == []


def test_thumbs_and_a_comment_are_stored_for_each_answer(context: Any, world: World, screenshots: Path) -> None:
    page = sign_in(context, world, "alice")
    for turns, question in enumerate(("How many wellness days are there?", "What is repaid for bicycles?"), 1):
        page.fill("#question textarea", question)
        page.click("#ask")
        answered(page, turns)
    first, second = page.locator("#transcript .turn .rate").all()
    first.locator(".rate-comment").fill("the wellness days are missing")
    first.get_by_role("button", name="Not helpful").click()
    page.wait_for_selector("#rated-note:has-text('saved')", timeout=30_000)
    second.get_by_role("button", name="Helpful", exact=True).click()
    page.wait_for_function("document.querySelectorAll('#rated-note .thanks').length === 1", timeout=30_000)
    page.wait_for_timeout(500)
    ratings = world.services.web.chats.feedback_log(SYSTEM)[:2]
    assert [(r["question"], r["helpful"], r["comment"]) for r in reversed(ratings)] == [
        ("How many wellness days are there?", False, "the wellness days are missing"),
        ("What is repaid for bicycles?", True, "")]
    assert second.get_by_role("button", name="Helpful", exact=True).get_attribute("aria-pressed") == "true"
    icon = page.evaluate("getComputedStyle(document.querySelector('.rate .thumb.up'), '::before').maskImage")
    assert "/static/icons/thumb-up.svg" in icon, "the thumbs are icons shipped with the app, not emoji"
    assert "👍" not in page.content() and "👎" not in page.content()
    shot(page, screenshots, "chat-thumbs")
    assert foreign_requests(context, world) == []


def test_delete_asks_first_and_rename_says_it_is_done(context: Any, world: World) -> None:
    page = sign_in(context, world, "alice")
    if not alices_chats(world):  # run alone: a conversation to delete
        page.fill("#question textarea", "How many wellness days are there?")
        page.click("#ask")
        answered(page, 1)
    page.wait_for_selector("#chat-list input[type=radio]", timeout=30_000)
    before = len(alices_chats(world))
    page.locator("#chat-list label").first.click()
    page.wait_for_selector("#transcript .turn", timeout=30_000)
    page.fill("#chat-title input, #chat-title textarea", "Perks questions")
    page.click("#rename-chat")
    page.wait_for_function("document.body.innerText.includes('Renamed to “Perks questions”')", timeout=30_000)
    # The list is another output of the same event: under load Gradio may still be drawing it ("processing").
    page.wait_for_function("document.querySelector('#chat-list').innerText.includes('Perks questions')",
                           timeout=30_000)
    assert "Perks questions" in page.inner_text("#chat-list")
    page.click("#delete-chat")
    page.wait_for_selector("#delete-question:has-text('Delete “Perks questions”')", timeout=30_000)
    page.click("#delete-no")
    page.wait_for_selector("#delete-question", state="hidden", timeout=30_000)
    assert len(alices_chats(world)) == before, "cancelled: nothing was deleted"
    page.click("#delete-chat")
    page.wait_for_selector("#delete-question", state="visible", timeout=30_000)
    page.click("#new-chat")  # moving on withdraws the question, so it never deletes another conversation
    page.wait_for_selector("#delete-question", state="hidden", timeout=30_000)
    page.locator("#chat-list label:has-text('Perks questions')").click()
    page.wait_for_selector("#transcript .turn", timeout=30_000)
    page.click("#delete-chat")
    page.click("#delete-yes")
    page.wait_for_function(f"document.querySelectorAll('#chat-list input[type=radio]').length === {before - 1}",
                           timeout=30_000)
    assert len(alices_chats(world)) == before - 1
    assert "Perks questions" not in [c.title for c in alices_chats(world)]


def test_someone_with_no_documents_is_told_what_to_do_first(context: Any, world: World,
                                                            empty_world: World, screenshots: Path) -> None:
    page = sign_in(context, world, "bob")
    page.wait_for_selector("#transcript .no-documents", timeout=30_000)
    assert "No documents are shared with you yet" in page.inner_text("#transcript")
    admin = sign_in(context, empty_world, "admin")
    admin.wait_for_selector("#transcript .no-documents", timeout=30_000)
    assert admin.locator("#transcript a.ingest-link").get_attribute("href") == "/admin/"
    shot(admin, screenshots, "chat-no-documents")
