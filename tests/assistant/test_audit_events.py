"""Typed audit events: written and read back through a real database, in the rows' old shape."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant import audit_events as ev
from assistant.audit import SYSTEM, AuditLog
from ingest.pipeline import IngestReport
from storage.account_store import AccountStore
from storage.db import Database

ONE_OF_EACH: list[ev.AuditEvent] = [
    ev.SignIn("alice", client="10.0.0.7"),
    ev.SignInFailed("(unknown user)", client="10.0.0.8", unknown_user=True),
    ev.SignInRefused("alice", reason="locked", client="10.0.0.7"),
    ev.AccountLocked("alice", failures=5, client="10.0.0.7"),
    ev.SignOut("alice"),
    ev.UserCreated("admin", role="admin", first_start=True),
    ev.PasswordChanged("alice"),
    ev.RoleChanged("alice", role="admin"),
    ev.UserEnabled("alice"),
    ev.UserDisabled("alice"),
    ev.CollectionCreated("hr"),
    ev.GroupCreated("staff"),
    ev.GroupDeleted("staff"),
    ev.GroupMemberAdded("staff", user="alice"),
    ev.GroupMemberRemoved("staff", user="alice"),
    ev.GrantAdded("hr", group="staff"),
    ev.GrantRevoked("hr", group="staff"),
    ev.ApiTokenCreated("alice", token=3, name="nightly report", expires_days=None),
    ev.ApiTokenRevoked("alice", token=3, name="nightly report"),
    ev.ChatDeleted(12),
    ev.QuestionAsked(12, question="Which class do we fly?", collections=["hr", "travel"]),
    ev.Feedback(40, helpful=False),
    ev.FilesUploaded("uploads", files=["plan.md", "policy.pdf"]),
    ev.IngestStarted("hr", folder="/srv/share/hr", sync=True, job=7),
    ev.IngestFinished("hr", job=7, added=3, updated=1, unchanged=9, removed=0, renamed=1, documents=13,
                      chunks=410, seconds=12.5, failed=2),
    ev.IngestFailed("job 7", job=7, error="worker died 3 times"),
    ev.IngestRequeued("job 7", job=7, error="lease expired"),
    ev.DocumentRemoved("policies/old.pdf", collection="hr"),
    ev.SettingsChanged("generation", {"backend": "ollama", "ollama_host": "http://10.0.0.5:11434", "top_k": 5}),
    ev.ModelChosen("qwen.gguf", backend="embedded", source="data-dir", location="/srv/enclave/models/qwen.gguf",
                   sha256="ab" * 32),
    ev.ModelAdded("qwen.gguf", size_bytes=491_400_032, sha256="ab" * 32),
    ev.ExpectedAnswerSaved(40, collection="hr", answerable=False),
    ev.QualitySetExported("/srv/qa/hr", collection=None, questions=12),
    ev.SourceAdded("hr-share", folder="/mnt/hr", collection="hr", schedule="every 1h"),
    ev.SourceChanged("hr-share", change="paused"),
    ev.SourceRemoved("hr-share"),
    ev.SourceRunHeld("/mnt/hr", job=9, reason="/mnt/hr is missing: the share looks unmounted"),
    ev.IngestRootAdded("/srv/shares/hr"),
    ev.IngestRootRemoved("/srv/shares/hr"),
    ev.DirectoryUserDisabled("bob", reason="removed from the directory"),
    ev.DirectoryUserEnabled("bob"),
    ev.DirectoryRoleChanged("dan", role="admin"),
    ev.DirectorySynced("ldaps://dc1.example.org", accounts=40, changed=2),
    ev.DirectorySyncFailed("ldaps://dc1.example.org", error="the company directory cannot be reached"),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AccountStore]:
    database = Database(f"sqlite:///{tmp_path / 'enclave.db'}")
    database.migrate()
    yield AccountStore(database)
    database.dispose()


def test_every_kind_of_event_reads_back_as_it_was_recorded(store: AccountStore) -> None:
    assert {type(e) for e in ONE_OF_EACH} == set(ev.EVENT_TYPES.values()), "one sample of every kind"
    audit = AuditLog(store)
    for event in ONE_OF_EACH:
        audit.record(SYSTEM, event)
    entries = audit.events(SYSTEM, limit=100)
    assert [entry.event for entry in reversed(entries)] == ONE_OF_EACH
    assert {entry.user for entry in entries} == {"cli"}


def test_rows_keep_the_shape_the_activity_page_and_older_rows_have(store: AccountStore) -> None:
    audit = AuditLog(store)
    audit.record("system", ev.UserCreated("admin", role="admin", first_start=True))
    audit.record(SYSTEM, ev.UserCreated("bob", role="user"))
    audit.record(SYSTEM, ev.QuestionAsked(12, question="Which class?", collections=["hr"]))
    audit.record(SYSTEM, ev.SettingsChanged("generation", {"backend": "embedded", "top_k": 4}))
    rows = [(r["user"], r["action"], r["target"], r["detail"]) for r in reversed(store.events())]
    assert rows == [
        ("system", "user_created", "admin", {"role": "admin", "first_start": True}),
        ("cli", "user_created", "bob", {"role": "user"}),  # a field at its default is not stored
        ("cli", "question_asked", "12", {"question": "Which class?", "collections": ["hr"]}),
        ("cli", "settings_changed", "generation", {"backend": "embedded", "top_k": 4}),
    ]
    shown = audit.events(SYSTEM, action="question_asked")[0].as_row()
    assert {k: shown[k] for k in ("user", "action", "target", "detail")} == {
        "user": "cli", "action": "question_asked", "target": "12",
        "detail": {"question": "Which class?", "collections": ["hr"]}}


def test_a_finished_ingest_stores_the_report_summary_and_the_failure_count() -> None:
    report = IngestReport(added=2, unchanged=5, failed=[("a.pdf", "no text found")], documents=7, chunks=90,
                          seconds=1.23456)
    assert ev.IngestFinished.of("hr", 7, report).detail() == {
        "job": 7, "added": 2, "updated": 0, "unchanged": 5, "removed": 0, "renamed": 0, "documents": 7,
        "chunks": 90, "seconds": 1.235, "failed": 1}


def test_rows_this_version_cannot_type_are_still_listed_as_stored(store: AccountStore) -> None:
    store.add_event("alice", "export_requested", "hr", {"format": "zip"})  # an action no longer recorded
    store.add_event("alice", "sign_in", "alice", {})  # written before the client address was kept
    entries = AuditLog(store).events(SYSTEM)
    assert [(e.action, e.event) for e in entries] == [("sign_in", None), ("export_requested", None)]
    assert entries[1].as_row()["detail"] == {"format": "zip"}


def test_only_admins_read_the_log(store: AccountStore) -> None:
    from assistant.audit import Principal
    from assistant.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        AuditLog(store).events(Principal(2, "alice", "user"))
