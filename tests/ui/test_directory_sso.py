"""Company single sign-on in Chromium: the sign-in page's button, the provider's round trip, and the chat."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fake_ollama import FakeOllama
from tests.oidc_idp import CLIENT_ID, CLIENT_SECRET, LoopbackIdP
from tests.ui.conftest import World, build_world
from tests.ui.test_browser import chromium


@pytest.fixture(scope="module")
def idp() -> Iterator[LoopbackIdP]:
    provider = LoopbackIdP().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def world(idp: LoopbackIdP, embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("sso-world")
    with FakeOllama() as fake:
        folder = root / "designs"
        folder.mkdir()
        (folder / "bridge.md").write_text("# Bridge\n\nThe bridge deck is forty metres long.\n")
        oidc = {"enabled": True, "issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                "allow_plain": True, "group_map": {"Engineering": "staff"}}
        built = build_world(root, embedder, fake, {"designs": folder}, ["designs"], oidc=oidc)
        serve(built)
        yield built
        built.services.close()


def test_a_callback_without_this_browsers_attempt_is_refused(world: World) -> None:
    with httpx.Client(base_url=world.url, follow_redirects=False, timeout=30) as client:
        refused = client.get("/login/oidc/callback", params={"code": "stolen", "state": "guessed"})
        assert refused.status_code == 401 and "did not complete" in refused.text
        assert "enclave_session" not in refused.headers.get("set-cookie", "")


@pytest.mark.slow
def test_single_sign_on_in_chromium_lands_in_the_chat_with_the_groups_collection(
    world: World, screenshots: Path
) -> None:
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(world.url + "/")
        page.wait_for_selector("#sso-sign-in")
        page.screenshot(path=str(screenshots / "sign-in-sso.png"))
        page.click("#sso-sign-in")
        page.wait_for_selector("#question textarea", timeout=30_000)
        assert page.url.startswith(world.url + "/chat")
        page.wait_for_selector("#collections label:has-text('designs')", timeout=30_000)  # the group's grant
        context.close()
    from assistant.audit import SYSTEM

    assert world.services.web.access.explain(SYSTEM, "grace").collections[0].collection == "designs"
