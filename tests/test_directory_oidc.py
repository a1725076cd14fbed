"""Company single sign-on against an OpenID provider on loopback: the code flow, and tokens that must be refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from assistant.audit import SYSTEM
from assistant.directory import Flow
from assistant.errors import DirectoryUnavailable, SignInFailed
from tests.oidc_idp import CLIENT_ID, CLIENT_SECRET, LoopbackIdP

REDIRECT = "http://127.0.0.1:9/login/oidc/callback"  # never fetched: the provider only sends the browser there


@pytest.fixture
def idp() -> Iterator[LoopbackIdP]:
    provider = LoopbackIdP().start()
    yield provider
    provider.stop()


def oidc_settings(idp: LoopbackIdP, **overrides: Any) -> dict[str, Any]:
    return {"enabled": True, "issuer": idp.url, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
            "allow_plain": True, "group_map": {"Engineering": "engineers"}, "timeout_s": 3, **overrides}


@pytest.fixture
def web(idp: LoopbackIdP, make_services: Callable[..., Any]) -> Any:
    web = make_services(oidc=oidc_settings(idp)).web
    web.accounts.ensure_admin("admin-password-1")
    web.access.create_collection(SYSTEM, "designs")
    web.access.create_group(SYSTEM, "engineers")
    web.access.set_grant(SYSTEM, "engineers", "designs")
    return web


def browse_to_provider(web: Any) -> tuple[str, str, Flow]:
    """What a browser does: leave for the provider, which approves and sends back a code and the state."""
    url, flow = web.directory.oidc_start(REDIRECT)
    back = httpx.get(url, follow_redirects=False, timeout=10)
    assert back.status_code == 302 and back.headers["location"].startswith(REDIRECT)
    query = httpx.URL(back.headers["location"]).params
    return query["code"], query["state"], flow


def test_code_flow_signs_in_and_the_groups_claim_grants_a_collection(web: Any, idp: LoopbackIdP) -> None:
    code, state, flow = browse_to_provider(web)
    principal, token = web.directory.oidc_finish(code, state, flow, REDIRECT, "10.0.0.9")
    assert principal.username == "grace" and web.accounts.session(token) == principal
    assert web.access.readable(principal) == ["designs"]
    explained = web.access.explain(SYSTEM, "grace")
    assert explained.source == "oidc"
    assert [(r.group, r.source, r.directory_group) for r in explained.collections[0].reasons] == [
        ("engineers", "oidc", "Engineering")]
    assert idp.token_requests[-1]["verifier"] == flow.verifier  # PKCE: the verifier went with the code


@pytest.mark.parametrize("mode", ["forged", "expired", "other_audience"])
def test_forged_expired_and_other_audience_id_tokens_are_refused(web: Any, idp: LoopbackIdP, mode: str) -> None:
    idp.token_mode = mode
    code, state, flow = browse_to_provider(web)
    with pytest.raises(SignInFailed, match="did not complete"):
        web.directory.oidc_finish(code, state, flow, REDIRECT)
    assert web.accounts.users(SYSTEM)[-1]["username"] != "grace"  # no account was made
    assert any(e.action == "sign_in_refused" and e.detail["reason"].startswith("oidc")
               for e in web.audit.events(SYSTEM))


def test_a_code_without_this_browsers_state_or_verifier_is_refused(web: Any) -> None:
    code, state, flow = browse_to_provider(web)
    with pytest.raises(SignInFailed):
        web.directory.oidc_finish(code, "another-state", flow, REDIRECT)  # login CSRF: not this browser's attempt
    code, state, flow = browse_to_provider(web)
    with pytest.raises(SignInFailed):  # a stolen code without the verifier
        web.directory.oidc_finish(code, state, Flow(flow.state, flow.nonce, "x" * 64), REDIRECT)


def test_a_removed_group_is_left_at_the_next_sign_in(web: Any, idp: LoopbackIdP) -> None:
    code, state, flow = browse_to_provider(web)
    grace, _ = web.directory.oidc_finish(code, state, flow, REDIRECT)
    idp.person = {**idp.person, "groups": []}
    code, state, flow = browse_to_provider(web)
    web.directory.oidc_finish(code, state, flow, REDIRECT)
    assert web.access.readable(grace) == []


def test_provider_down_is_a_clear_message(idp: LoopbackIdP, make_services: Callable[..., Any]) -> None:
    web = make_services(oidc=oidc_settings(idp)).web
    idp.stop()
    with pytest.raises(DirectoryUnavailable, match="cannot be reached"):
        web.directory.oidc_start(REDIRECT)


def test_endpoints_on_another_host_are_never_contacted(idp: LoopbackIdP, make_services: Callable[..., Any]) -> None:
    idp.token_endpoint = "https://collector.example.net/token"  # the test network guard fails any attempt to go there
    web = make_services(oidc=oidc_settings(idp)).web
    code, state, flow = browse_to_provider(web)
    with pytest.raises(DirectoryUnavailable, match="another host"):
        web.directory.oidc_finish(code, state, flow, REDIRECT)
