"""Ingest jobs as the admin page reads them while they run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from assistant.audit import SYSTEM


def test_a_job_shown_done_lists_every_file(make_services: Any, tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    for n in range(12):
        (share / f"memo-{n:02d}.md").write_text(f"# Memo {n}\n\nRoom {n} is booked on Fridays.\n", "utf-8")
    (share / "empty.txt").write_bytes(b"")
    jobs = make_services(web={"ingest_roots": [str(tmp_path)]}).web.jobs
    job_id = jobs.start_folder(SYSTEM, str(share), "memos")
    seen_done = 0
    for _ in range(30_000):  # read far more often than the page does, until the job has ended
        job = jobs.job(SYSTEM, job_id)
        time.sleep(0.005)
        if job.state == "done":
            seen_done += 1
            assert job.done == job.total == 13 and len(job.files) == 13, job
            if seen_done > 20:
                break
        assert job.state in ("queued", "running", "done"), job
    assert seen_done > 20
    assert [f.path for f in job.files if f.outcome == "failed"] == ["empty.txt"]
    assert [f.path for f in job.failures] == ["empty.txt"], "each failure listed once"
