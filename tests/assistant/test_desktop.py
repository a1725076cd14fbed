"""The desktop mode's account, one-time sign-in links, and remembered folders (``assistant.desktop``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.audit import SYSTEM
from assistant.desktop import DesktopSignIn, desktop_username, follow_folders
from assistant.errors import InvalidInput, SignInFailed


def test_the_account_is_made_silently_as_an_admin_that_no_password_opens(make_services: Any) -> None:
    accounts = make_services().web.accounts
    DesktopSignIn(accounts, "pat").prepare()
    assert [(u["username"], u["role"]) for u in accounts.users(SYSTEM)] == [("pat", "admin")]
    for password in ("", "!", "pat", "a-long-password-1"):
        with pytest.raises(SignInFailed):
            accounts.sign_in("pat", password, "127.0.0.1")


def test_a_link_signs_in_once_from_this_machine_only(make_services: Any) -> None:
    accounts = make_services().web.accounts
    sign_in = DesktopSignIn(accounts, "pat")
    sign_in.prepare()
    token = sign_in.new_link()
    session = sign_in.redeem(token, "127.0.0.1")
    assert accounts.session(session).username == "pat"
    with pytest.raises(SignInFailed, match="works once"):
        sign_in.redeem(token, "127.0.0.1")
    with pytest.raises(SignInFailed):
        sign_in.redeem(sign_in.new_link(), "192.0.2.7")  # another machine, even with a good link


def test_a_wrong_guess_ends_every_open_link(make_services: Any) -> None:
    sign_in = DesktopSignIn(make_services().web.accounts, "pat")
    sign_in.prepare()
    token = sign_in.new_link()
    with pytest.raises(SignInFailed):
        sign_in.redeem(token[:-1] + ("A" if token[-1] != "A" else "B"), "127.0.0.1")
    with pytest.raises(SignInFailed):
        sign_in.redeem(token, "127.0.0.1")


def test_a_link_expires(make_services: Any) -> None:
    sign_in = DesktopSignIn(make_services().web.accounts, "pat", valid_s=0)
    sign_in.prepare()
    with pytest.raises(SignInFailed):
        sign_in.redeem(sign_in.new_link(), "127.0.0.1")


def test_a_disabled_account_is_not_opened(make_services: Any) -> None:
    accounts = make_services().web.accounts
    sign_in = DesktopSignIn(accounts, "pat")
    sign_in.prepare()
    accounts.create_user(SYSTEM, "kim", "kim-password-1", role="admin")  # pat is no longer the last admin
    token = sign_in.new_link()
    accounts.set_active(SYSTEM, "pat", False)
    with pytest.raises(SignInFailed, match="disabled"):
        sign_in.prepare()
    with pytest.raises(SignInFailed, match="disabled"):  # a link made before it was disabled opens nothing
        sign_in.redeem(token, "127.0.0.1")


def test_login_names_become_account_names() -> None:
    assert desktop_username("jane.doe") == "jane.doe"
    assert desktop_username("DOMAIN\\jane doe") == "DOMAIN-jane-doe"
    assert desktop_username("") == "me"


def test_folders_are_followed_once_and_remembered(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    papers, other = tmp_path / "Papers", tmp_path / "elsewhere" / "Papers"
    papers.mkdir()
    other.mkdir(parents=True)
    follow_folders(services.web.sources, [papers])
    follow_folders(services.web.sources, [papers, other])  # the same folder again: still one source
    remembered = follow_folders(services.web.sources, [])  # a later start without --folder
    assert sorted((s.name, s.folder) for s in remembered) == [("Papers", str(papers)), ("Papers 2", str(other))]
    with pytest.raises(InvalidInput, match="not a folder"):
        follow_folders(services.web.sources, [tmp_path / "missing"])
