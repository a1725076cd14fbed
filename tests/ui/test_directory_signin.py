"""Company sign-in in the web app against a real OpenLDAP server: the form, an outage, and the admin's explain view."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_ollama import FakeOllama
from tests.slapd_server import PASSWORDS as DIRECTORY_PASSWORDS
from tests.slapd_server import Slapd, directory_settings, running_slapd
from tests.ui.conftest import PASSWORDS, World, build_world
from tests.ui.test_browser import chromium, foreign_requests


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    yield from running_slapd(tmp_path_factory.mktemp("slapd"))


@pytest.fixture(scope="module")
def world(slapd: Slapd, embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    """Local admin, alice and bob; company sign-in on, with the directory's IT Admins mapped to staff."""
    root = tmp_path_factory.mktemp("directory-world")
    with FakeOllama() as fake:
        folder = root / "handbook"
        folder.mkdir()
        (folder / "leave.md").write_text("# Leave\n\nStaff take twenty-five days of leave a year.\n")
        built = build_world(root, embedder, fake, {"handbook": folder}, ["handbook"],
                            directory=directory_settings(slapd, admin_groups=[], group_map={"IT Admins": "staff"}))
        serve(built)
        yield built
        built.services.close()


def post_login(world: World, user: str, password: str) -> httpx.Response:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=30) as client:
        return client.post("/login", data={"username": user, "password": password, "next": "/"})


def test_the_sign_in_page_offers_the_company_account_first(world: World) -> None:
    page = httpx.get(world.url + "/login", timeout=30).text
    assert page.index('id="company-sign-in"') < page.index('id="username"')
    assert "Sign in with your company account" in page


def test_a_company_account_signs_in_through_the_form(world: World) -> None:
    response = post_login(world, "dan", DIRECTORY_PASSWORDS["dan"])
    assert response.status_code == 303 and "enclave_session" in response.headers.get("set-cookie", "")
    assert post_login(world, "dan", "wrong-password-1").status_code == 401


def test_directory_down_says_so_and_the_local_admin_still_signs_in(world: World, slapd: Slapd) -> None:
    slapd.stop()
    try:
        refused = post_login(world, "dan", DIRECTORY_PASSWORDS["dan"])
        assert refused.status_code == 503 and "cannot be reached" in refused.text
        assert "set-cookie" not in refused.headers
        assert post_login(world, "admin", PASSWORDS["admin"]).status_code == 303
    finally:
        slapd.start()


@pytest.mark.slow
def test_the_admin_explains_a_company_users_access_in_chromium(world: World, screenshots: Path) -> None:
    assert post_login(world, "dan", DIRECTORY_PASSWORDS["dan"]).status_code == 303  # dan's account exists
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1440, "height": 960})
        context.requests = []
        context.on("request", lambda request: context.requests.append(request.url))
        page = context.new_page()
        page.goto(world.url + "/admin/")
        page.fill("#username", "admin")
        page.fill("#password", PASSWORDS["admin"])
        page.click("button[type=submit]")
        page.get_by_role("tab", name="Users and access").click()
        page.wait_for_selector("#users-table td:has-text('directory')", timeout=30_000)
        page.fill("#user-name textarea, #user-name input", "dan")
        page.click("#explain-access")
        page.wait_for_selector("#access-explained td:has-text('handbook')", timeout=30_000)
        explained = page.inner_text("#access-explained")
        assert "directory account" in explained and "directory group IT Admins" in explained
        page.screenshot(path=str(screenshots / "admin-directory-explain.png"), full_page=True)
        page.click("#directory-sync")
        page.wait_for_selector("#access-explained:has-text('company accounts checked')", timeout=30_000)
        assert foreign_requests(context, world) == []
        context.close()
