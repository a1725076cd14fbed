"""Company sign-in against a real OpenLDAP server: passwords, disabled accounts, nested groups, the sync, outages."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.audit import SYSTEM
from assistant.errors import DirectoryUnavailable, SignInFailed
from tests.slapd_server import PASSWORDS, Slapd, directory_settings, group_dn, person_dn, running_slapd
from ui.cli import build_cli

LOCAL_ADMIN = "admin-password-1"


@pytest.fixture(scope="module")
def slapd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slapd]:
    yield from running_slapd(tmp_path_factory.mktemp("slapd"))


@pytest.fixture
def web(slapd: Slapd, make_services: Callable[..., Any]) -> Any:
    """Services with company sign-in on, a local admin, and a Finance group that reads the finance collection."""
    services = make_services(directory=directory_settings(slapd))
    web = services.web
    web.accounts.ensure_admin(LOCAL_ADMIN)
    web.access.create_collection(SYSTEM, "finance")
    web.access.create_collection(SYSTEM, "handbook")
    web.access.create_group(SYSTEM, "Finance")
    web.access.set_grant(SYSTEM, "Finance", "finance")
    return web


def actions(web: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """The audit log as (action, target, details), newest first."""
    return [(e.action, e.target, e.detail) for e in web.audit.events(SYSTEM)]


def readable(web: Any, username: str) -> list[str]:
    return [c.collection for c in web.access.explain(SYSTEM, username).collections]


def test_company_account_signs_in_and_reads_what_its_directory_groups_are_granted(web: Any) -> None:
    principal, token = web.directory.sign_in("alice", PASSWORDS["alice"], "10.0.0.5")
    assert web.accounts.session(token) == principal and not principal.is_admin
    assert web.access.readable(principal) == ["finance"]
    explained = web.access.explain(SYSTEM, "alice")
    assert explained.source == "directory"
    assert [(c.collection, [(r.group, r.source) for r in c.reasons]) for c in explained.collections] == [
        ("finance", [("Finance", "directory")])]
    assert explained.collections[0].reasons[0].directory_group == "Finance"
    assert ("sign_in", "alice", {"client": "10.0.0.5", "method": "directory"}) in actions(web)
    assert ("user_created", "alice", {"role": "user", "source": "directory"}) in actions(web)


def test_nested_groups_and_the_mapping_table(web: Any) -> None:
    bob, _ = web.directory.sign_in("bob", PASSWORDS["bob"])  # in Payroll, which is inside Finance
    assert web.access.readable(bob) == ["finance"]
    assert {g.group for g in web.access.explain(SYSTEM, "bob").groups} == {"Finance", "payroll-team"}


def test_directory_admin_group_makes_an_enclave_admin(web: Any) -> None:
    dan, _ = web.directory.sign_in("dan", PASSWORDS["dan"])
    assert dan.is_admin and web.access.readable(dan) == ["finance", "handbook"]


def test_wrong_or_empty_password_and_unknown_names_are_refused_alike(web: Any) -> None:
    for name, password in (("alice", "not-her-password"), ("alice", ""), ("nobody", "whatever-1")):
        with pytest.raises(SignInFailed, match="wrong user name or password"):
            web.directory.sign_in(name, password, "10.0.0.6")
    failed = [a for a in actions(web) if a[0] == "sign_in_failed"]
    assert failed and all(a[2]["method"] == "directory" for a in failed)
    assert all(a[1] != "nobody" for a in actions(web))  # a typed name that is no account is never stored


def test_guessing_locks_the_account_here_before_it_can_lock_the_company_account(
    slapd: Slapd, make_services: Callable[..., Any]
) -> None:
    from assistant.errors import AccountLocked

    web = make_services(directory=directory_settings(slapd), web={"max_failed_sign_ins": 3}).web
    web.directory.sign_in("alice", PASSWORDS["alice"])
    for _ in range(3):
        with pytest.raises(SignInFailed):
            web.directory.sign_in("alice", "a-guess-1234")
    slapd.stop()  # locked here: the directory is not even asked
    try:
        with pytest.raises(AccountLocked):
            web.directory.sign_in("alice", PASSWORDS["alice"])
    finally:
        slapd.start()
    web.accounts.set_active(SYSTEM, "alice", True)  # an admin unlocks, as for local accounts
    assert web.directory.sign_in("alice", PASSWORDS["alice"])[0].username == "alice"


def test_account_disabled_in_the_directory_cannot_sign_in(web: Any) -> None:
    with pytest.raises(SignInFailed, match="disabled in the company directory"):
        web.directory.sign_in("carol", PASSWORDS["carol"])
    assert any(a[0] == "sign_in_refused" and a[2]["reason"] == "disabled in directory" for a in actions(web))


def test_user_moved_out_of_a_group_loses_the_collection_at_the_next_sync(web: Any, slapd: Slapd) -> None:
    import ldap3

    alice, token = web.directory.sign_in("alice", PASSWORDS["alice"])
    assert web.access.readable(alice) == ["finance"]
    slapd.modify(group_dn("Finance"), {"member": [(ldap3.MODIFY_DELETE, [person_dn("alice")])]})
    try:
        assert web.access.readable(alice) == ["finance"]  # nothing changes before the sync
        report = web.directory.sync(SYSTEM)
        assert "alice: left Finance" in report.changes
        assert web.access.readable(alice) == []
        assert web.accounts.session(token) == alice  # still signed in, reading less
        assert ("group_member_removed", "Finance", {"user": "alice"}) in actions(web)
    finally:
        slapd.modify(group_dn("Finance"), {"member": [(ldap3.MODIFY_ADD, [person_dn("alice")])]})


def test_an_admins_own_membership_survives_the_sync(web: Any) -> None:
    web.directory.sign_in("alice", PASSWORDS["alice"])
    web.access.create_group(SYSTEM, "auditors")
    web.access.set_grant(SYSTEM, "auditors", "handbook")
    web.access.set_member(SYSTEM, "alice", "auditors")
    web.directory.sync(SYSTEM)
    assert readable(web, "alice") == ["finance", "handbook"]
    reasons = {c.collection: c.reasons[0].source for c in web.access.explain(SYSTEM, "alice").collections}
    assert reasons == {"finance": "directory", "handbook": "manual"}


def test_disabled_or_removed_accounts_lose_sessions_and_api_tokens_at_the_next_sync(web: Any, slapd: Slapd) -> None:
    import ldap3

    bob, session = web.directory.sign_in("bob", PASSWORDS["bob"])
    _, secret = web.tokens.create(bob, "bob", "laptop")
    assert web.tokens.principal(secret) == bob
    slapd.modify(person_dn("bob"), {"employeeType": [(ldap3.MODIFY_REPLACE, ["disabled"])]})
    try:
        report = web.directory.sync(SYSTEM)
        assert report.disabled == ["bob"]
        assert web.accounts.session(session) is None and web.tokens.principal(secret) is None
        assert readable(web, "bob") == []
        assert ("directory_user_disabled", "bob", {"reason": "disabled in the directory"}) in actions(web)
    finally:
        slapd.modify(person_dn("bob"), {"employeeType": [(ldap3.MODIFY_DELETE, [])]})
    # enabled again in the directory: the next sign-in enables the account here too
    bob_again, _ = web.directory.sign_in("bob", PASSWORDS["bob"])
    assert web.access.readable(bob_again) == ["finance"]


def test_a_leaver_removed_from_the_directory_is_disabled_by_the_periodic_sync(
    slapd: Slapd, make_services: Callable[..., Any]
) -> None:
    import time

    web = make_services(directory=directory_settings(slapd, sync_minutes=0.01)).web  # every 0.6 s
    slapd.add_person("frank", "frank-secret-1")
    _, session = web.directory.sign_in("frank", "frank-secret-1")
    slapd.delete(person_dn("frank"))
    stop = web.directory.start_periodic_sync()
    assert stop is not None
    try:
        deadline = time.monotonic() + 20
        while web.accounts.session(session) is not None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
    assert web.accounts.session(session) is None
    assert ("directory_user_disabled", "frank", {"reason": "removed from the directory"}) in actions(web)


def test_an_account_an_admin_disabled_here_stays_disabled(web: Any) -> None:
    web.directory.sign_in("alice", PASSWORDS["alice"])
    web.accounts.set_active(SYSTEM, "alice", False)
    with pytest.raises(SignInFailed):
        web.directory.sign_in("alice", PASSWORDS["alice"])
    web.directory.sync(SYSTEM)
    assert web.access.explain(SYSTEM, "alice").active is False


def test_a_local_account_keeps_its_name_and_the_directory_cannot_take_it_over(
    slapd: Slapd, make_services: Callable[..., Any]
) -> None:
    web = make_services(directory=directory_settings(slapd)).web
    web.accounts.ensure_admin(LOCAL_ADMIN)
    web.accounts.create_user(SYSTEM, "alice", "local-alice-password")
    with pytest.raises(SignInFailed):
        web.directory.sign_in("alice", PASSWORDS["alice"])  # the directory's password is not this account's
    principal, _ = web.directory.sign_in("alice", "local-alice-password")
    assert web.access.explain(SYSTEM, "alice").source == "local" and principal.username == "alice"


def test_local_sign_in_for_admins_only(slapd: Slapd, make_services: Callable[..., Any]) -> None:
    web = make_services(directory=directory_settings(slapd, local_accounts="admins")).web
    web.accounts.ensure_admin(LOCAL_ADMIN)
    web.accounts.create_user(SYSTEM, "erin", "local-erin-password")
    with pytest.raises(SignInFailed, match="company account"):
        web.directory.sign_in("erin", "local-erin-password")
    assert web.directory.sign_in("admin", LOCAL_ADMIN)[0].is_admin


def test_directory_down_gives_a_clear_message_and_local_admins_still_sign_in(web: Any, slapd: Slapd) -> None:
    web.directory.sign_in("alice", PASSWORDS["alice"])
    slapd.stop()
    try:
        with pytest.raises(DirectoryUnavailable, match="cannot be reached"):
            web.directory.sign_in("alice", PASSWORDS["alice"])
        assert web.directory.sign_in("admin", LOCAL_ADMIN)[0].is_admin  # break-glass
        with pytest.raises(DirectoryUnavailable):
            web.directory.sync(SYSTEM)
        assert web.access.explain(SYSTEM, "alice").active  # an outage disables nobody
        assert any(a[0] == "directory_sync_failed" for a in actions(web))
    finally:
        slapd.start()


def test_a_certificate_from_another_ca_is_refused(slapd: Slapd, make_services: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    from tests.slapd_server import write_certificates

    other_ca, _, _ = write_certificates(tmp_path)
    web = make_services(directory=directory_settings(slapd, ca_file=str(other_ca))).web
    with pytest.raises(DirectoryUnavailable):
        web.directory.sign_in("alice", PASSWORDS["alice"])


def test_a_certificate_for_another_host_name_is_refused(slapd: Slapd, make_services: Callable[..., Any]) -> None:
    import socket

    socket.create_connection(("127.0.0.2", slapd.ldaps_port), timeout=5).close()  # the server is there
    web = make_services(directory=directory_settings(slapd, url=f"ldaps://127.0.0.2:{slapd.ldaps_port}")).web
    with pytest.raises(DirectoryUnavailable):
        web.directory.sign_in("alice", PASSWORDS["alice"])


def test_start_tls_on_the_plain_port_and_plain_ldap_only_when_allowed(
    slapd: Slapd, make_services: Callable[..., Any]
) -> None:
    from pydantic import ValidationError

    plain = f"ldap://localhost:{slapd.ldap_port}"
    with pytest.raises(ValidationError, match="start_tls"):
        make_services(directory=directory_settings(slapd, url=plain))
    web = make_services(directory=directory_settings(slapd, url=plain, start_tls=True)).web
    assert web.directory.sign_in("alice", PASSWORDS["alice"])[0].username == "alice"


def test_users_explain_json(slapd: Slapd, make_services: Callable[..., Any], tmp_path: Path) -> None:
    data = tmp_path / "data"
    services = make_services(data_dir=data, directory=directory_settings(slapd))
    services.web.access.create_collection(SYSTEM, "payroll")
    services.web.access.create_group(SYSTEM, "payroll-team")
    services.web.access.set_grant(SYSTEM, "payroll-team", "payroll")
    services.web.directory.sign_in("bob", PASSWORDS["bob"])
    services.close()
    section = directory_settings(slapd)
    lines = [f"{key} = {json.dumps(value)}" for key, value in section.items() if not isinstance(value, dict)]
    (data / "enclave.toml").write_text("\n".join(["[directory]", *lines, "[directory.group_map]",
                                                  *(f"{json.dumps(k)} = {json.dumps(v)}"
                                                    for k, v in section["group_map"].items())]) + "\n")
    result = CliRunner().invoke(build_cli(), ["users", "explain", "bob", "--json", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["source"] == "directory" and shown["active"] is True
    assert shown["collections"] == [{"collection": "payroll", "reasons": [
        {"group": "payroll-team", "source": "directory", "directory_group": "Payroll"}]}]

    synced = CliRunner().invoke(build_cli(), ["users", "sync-directory", "--json", "--data-dir", str(data)])
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == {"accounts": 1, "disabled": [], "changes": []}


def test_sync_refuses_while_company_sign_in_is_off(make_services: Callable[..., Any]) -> None:
    from assistant.errors import InvalidInput

    with pytest.raises(InvalidInput, match="not turned on"):
        make_services().web.directory.sync(SYSTEM)
