"""``run.py sources ...`` as an admin's script uses it: JSON shapes, the run it reports, messages and exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from ui.cli import build_cli


def test_an_admin_manages_a_source_from_the_shell(tmp_path: Path) -> None:
    share = tmp_path / "share"
    (share / "old").mkdir(parents=True)
    (share / "parking.md").write_text("# Parking\n\nPermits are issued on Mondays.\n", "utf-8")
    (share / "old" / "draft.md").write_text("# Draft\n\nNot final.\n", "utf-8")
    (share / "notes.txt").write_bytes(b"")
    cli, runner = build_cli(), CliRunner()
    data = ["--data-dir", str(tmp_path / "data"), "--json"]

    def ok(*args: str) -> Any:
        result = runner.invoke(cli, ["sources", *args, *data])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    added = ok("add", "share", str(share), "--collection", "facilities", "--schedule", "0 2 * * *",
               "--exclude", "old")["source"]
    assert (added["schedule"], added["exclude"], added["queued"], added["held"]) == ("0 2 * * *", ["old"], True, None)
    run = ok("sync", "share")["run"]
    assert (run["state"], run["counts"]["added"], run["counts"]["failed"]) == ("done", 1, 1)
    assert run["failures"] == [{"path": "notes.txt", "outcome": "failed", "chunks": 0,
                                "reason": "empty file (0 bytes)"}]
    (share / "parking.md").unlink()
    held = ok("sync", "share")["run"]
    assert held["state"] == "held" and "share looks unmounted" in held["reason"]
    assert ok("list")["sources"][0]["held"] == held["reason"]
    assert ok("pause", "share")["source"]["enabled"] is False
    assert ok("sync", "share", "--no-wait") == {"source": "share", "job": held["job"] + 1, "queued": True}
    assert ok("sync", "share", "--no-wait")["queued"] is False, "a run already queued is joined"
    history = ok("history", "share")["runs"]
    assert [r["state"] for r in history] == ["queued", "held", "done"]
    assert ok("resume", "share")["source"]["enabled"] is True
    assert ok("remove", "share") == {"removed": "share"}

    missing = runner.invoke(cli, ["sources", "sync", "share", *data])
    assert missing.exit_code == 1 and "there is no source named share" in missing.output
    bad = runner.invoke(cli, ["sources", "add", "x", str(share), "--collection", "c", "--schedule", "often", *data])
    assert bad.exit_code == 1 and "cron expression" in bad.output
