"""The app's own pages: errors with a way home, the favicon, phones, keyboard focus, and a quiet log."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import SCREENSHOTS_ENV, World, build_world, screenshot_folder
from tests.ui.settings_form import call, components_by_elem_id, page_config
from tests.ui.test_access import hr_and_payroll_shares, route_templates, signed_in
from tests.ui.test_browser import chromium, shot, sign_in

VIEWPORT_RE = re.compile(r'<meta\s+name="viewport"\s+content="width=device-width, initial-scale=1')
HTML = {"accept": "text/html,application/xhtml+xml"}
PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("pages")
    with FakeOllama(FakeOllamaScript(reply="Economy class [1].")) as fake:
        built = build_world(root, embedder, fake, hr_and_payroll_shares(root), ["hr"])
        serve(built)
        hr = next(d for d in built.services.web.library.documents(SYSTEM) if d.collection == "hr")
        built.ids["hr"] = hr.id
        yield built
        built.services.close()


def assert_error_page(response: httpx.Response, status: int, home: str = 'href="/"') -> None:
    """The app's own page: the status, HTML for a phone, and a link out."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert VIEWPORT_RE.search(response.text) and home in response.text, response.text


def test_unknown_addresses_get_the_apps_404_page_and_api_routes_keep_json(world: World) -> None:
    with signed_in(world, "alice") as alice:
        assert_error_page(alice.get("/no-such-page", headers=HTML), 404)
        assert_error_page(alice.get(f"/view/doc/{world.ids['hr']}/page/99", headers=HTML), 404)
        assert_error_page(alice.get("/view/doc/not-a-number/page/0", headers=HTML), 422)
        assert_error_page(alice.get("/chat/no-such-page", headers=HTML), 404)  # under Gradio's mount too
        assert alice.get("/chat/gradio_api/no-such-route").json()["detail"], "Gradio's page fetches JSON as before"
        for path in ("/api/no-such-route", "/v1/no-such-route", f"/api/documents/{2**31 - 2}"):
            response = alice.get(path, headers=HTML)
            assert response.status_code == 404
            assert response.json()["error"]["message"], path


def test_a_user_at_admin_gets_the_403_page_with_a_way_home(world: World) -> None:
    with signed_in(world, "alice") as alice:
        assert_error_page(alice.get("/admin/", headers=HTML), 403)
        assert_error_page(alice.post("/admin/gradio_api/queue/join", json={}), 403)
        api = alice.get("/api/jobs", headers=HTML)
        assert api.status_code == 403 and api.json()["error"]["type"] == "permission_error"
    with httpx.Client(base_url=world.url, timeout=20) as anonymous:
        assert_error_page(anonymous.post("/account/tokens", data={"name": "x"}), 401, home='href="/login"')


def test_the_favicon_is_served_to_everyone_from_the_app(world: World) -> None:
    with httpx.Client(base_url=world.url, timeout=20) as anonymous:
        icon = anonymous.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/x-icon"
    assert icon.content.startswith(b"\x00\x00\x01\x00"), "an ICO file"


def html_pages(world: World) -> list[str]:
    """Every page of our own that a browser opens, from the app's routes, with real ids filled in."""
    document = world.ids["hr"]
    paths = [concrete.replace("/doc/1/", f"/doc/{document}/") for method, _, concrete, mount
             in route_templates(world.app) if method == "GET" and mount is None
             and not concrete.startswith(("/api", "/v1")) and not concrete.endswith(("/file", ".png", ".ico"))]
    return [*paths, "/chat/", "/admin/", "/no-such-page"]


def test_every_page_has_a_viewport_for_phones(world: World) -> None:
    checked = []
    with signed_in(world, "admin") as admin:
        for path in html_pages(world):
            response = admin.get(path, headers=HTML, follow_redirects=True)
            assert response.headers["content-type"].startswith("text/html"), path
            assert VIEWPORT_RE.search(response.text), f"{path} has no viewport meta"
            checked.append(path)
    assert {"/login", "/account/tokens", "/account/password", "/view/chunk/1", "/chat/"} <= set(checked)


# Elements reaching past the window's right edge, unless a scrolling box holds them: content cut off or
# pushing the page sideways.
CUT_OFF = """() => [...document.body.querySelectorAll('*')].filter(e => {
  const box = e.getBoundingClientRect();
  if (box.width === 0 || box.right <= innerWidth + 1) return false;
  if (!e.checkVisibility({visibilityProperty: true, opacityProperty: true})) return false;
  if (e.closest('.tab-container')) return false;  // Gradio's tab bar: the tabs it cuts are in its ... menu
  for (let up = e.parentElement; up; up = up.parentElement) {
    if (['auto', 'scroll'].includes(getComputedStyle(up).overflowX)) return false;
  }
  return true;
}).slice(0, 3).map(e => `${e.tagName}.${e.className} ${Math.round(e.getBoundingClientRect().right)} px`)"""


def too_wide(page: Any) -> list[str]:
    """What on the page does not fit the window: the page itself, when it scrolls sideways, and cut-off parts."""
    width = int(page.evaluate("document.documentElement.scrollWidth"))
    return ([f"the page, {width} px"] if width > PHONE["width"] else []) + list(page.evaluate(CUT_OFF))


def open_tab(page: Any, name: str) -> None:
    """Open a tab of a Gradio page; on a phone, tabs that do not fit sit in the "..." menu."""
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():
        page.click(".overflow-menu > button")
        tab = page.locator(f".overflow-dropdown button:has-text('{name}')")
    tab.click()
    page.wait_for_timeout(500)  # the tab's contents lay out


@pytest.mark.slow
def test_the_main_pages_fit_a_390_px_phone(world: World, screenshots: Path) -> None:
    widths: dict[str, list[str]] = {}
    world.services.web.tokens.create(SYSTEM, "alice", "the weekly report script of the finance team")
    with chromium() as browser:
        context = browser.new_context(viewport=PHONE)
        page = context.new_page()
        page.goto(world.url + "/login")
        widths["/login"] = too_wide(page)
        page = sign_in(context, world, "alice", "/chat/")
        page.wait_for_selector("#collections input[type=checkbox]", timeout=30_000)
        widths["/chat/"] = too_wide(page)
        shot(page, screenshots, "phone-chat")
        for path in ("/account/tokens", "/account/password", f"/view/doc/{world.ids['hr']}/page/1",
                     "/no-such-page", "/admin/"):
            page.goto(world.url + path)
            widths[path] = too_wide(page)
            if path == "/account/tokens":
                shot(page, screenshots, "phone-tokens")
        admin = sign_in(browser.new_context(viewport=PHONE), world, "admin", "/admin/")
        admin.wait_for_selector("#ingest-folder textarea", timeout=30_000)
        for tab in ("Ingest", "Documents", "Users and access", "Status and audit", "Settings", "Models", "Quality"):
            open_tab(admin, tab)
            widths[f"/admin/ {tab}"] = too_wide(admin)
            if tab == "Status and audit":
                shot(admin, screenshots, "phone-admin-status")
    wide = {path: parts for path, parts in widths.items() if parts}
    assert not wide, f"these scroll sideways on a 390 px phone: {wide}"


@pytest.mark.slow
def test_a_focused_checkbox_shows_a_focus_ring(world: World) -> None:
    with chromium() as browser:
        page = sign_in(browser.new_context(viewport={"width": 1280, "height": 900}), world, "alice", "/chat/")
        box = page.locator("#collections input[type=checkbox]").first
        box.wait_for(timeout=30_000)
        box.focus()
        page.keyboard.press("Shift+Tab")  # keyboard focus, as :focus-visible wants
        page.keyboard.press("Tab")
        ring = box.evaluate("e => { const s = getComputedStyle(e); return [document.activeElement === e, "
                            "s.outlineStyle, parseFloat(s.outlineWidth)] }")
        assert ring[0], "the checkbox has the keyboard focus"
        assert ring[1] != "none" and ring[2] >= 2, f"no visible focus ring: {ring}"


def test_a_refused_password_logs_one_line_and_no_traceback(world: World, caplog: pytest.LogCaptureFixture,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    with signed_in(world, "admin") as admin:
        config = page_config(admin)
        ids = components_by_elem_id(config)
        button = ids["add-user"]["id"]
        event = next(d for d in config["dependencies"] if [button, "click"] in d["targets"])
        values = {ids["user-name"]["id"]: "carol", ids["user-pw"]["id"]: "short", ids["user-role"]["id"]: "user"}
        done = call(admin, event["id"], [values[i] for i in event["inputs"]])
    assert not done["success"] and "at least" in str(done["output"]["error"]), done
    printed = capfd.readouterr()
    assert "Traceback" not in printed.err + printed.out
    refusals = [r for r in caplog.records if "at least" in r.getMessage()]
    assert len(refusals) == 1 and refusals[0].exc_info is None, [r.getMessage() for r in caplog.records]
    assert "carol" not in [u["username"] for u in world.services.web.accounts.users(SYSTEM)]


def test_a_refused_api_call_logs_one_line_and_no_traceback(world: World, caplog: pytest.LogCaptureFixture,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.INFO)
    with signed_in(world, "alice") as alice:
        assert alice.get(f"/view/doc/{world.ids['hr']}/page/99").status_code == 404
    assert [r.exc_info for r in caplog.records if "has no page" in r.getMessage()] == [None]
    assert "Traceback" not in capfd.readouterr().err


def test_screenshots_go_to_a_temporary_folder_unless_asked(tmp_path_factory: pytest.TempPathFactory,
                                                           tmp_path: Path, screenshots: Path) -> None:
    from tests.conftest import PROJECT_ROOT

    default = screenshot_folder({}, tmp_path_factory)  # what `make test` gets: nothing in the repository changes
    assert default.is_relative_to(tmp_path_factory.getbasetemp()) and not default.is_relative_to(PROJECT_ROOT)
    assert screenshot_folder({SCREENSHOTS_ENV: str(tmp_path / "docs")}, tmp_path_factory) == tmp_path / "docs"
    # This run's folder: a temporary one, or docs/screenshots under `make screenshots`, and nothing else.
    docs = PROJECT_ROOT / "docs" / "screenshots"
    assert screenshots.is_relative_to(tmp_path_factory.getbasetemp()) or screenshots == docs, screenshots
