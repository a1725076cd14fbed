"""One `run.py worker` per data dir on the in-process index: a second one is refused, saying why."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.errors import IndexWriterBusy
from storage.index_store import sole_worker
from tests.conftest import PROJECT_ROOT


def test_the_worker_lock_is_held_once_and_free_again_after(tmp_path: Path) -> None:
    with (sole_worker(tmp_path / "index"), pytest.raises(IndexWriterBusy, match=f"pid {os.getpid()}"),
          sole_worker(tmp_path / "index")):
        pass
    with sole_worker(tmp_path / "index"):
        pass


@pytest.mark.slow
def test_a_second_worker_on_one_data_dir_is_refused_and_the_first_keeps_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    log = tmp_path / "first.log"
    command = [sys.executable, "run.py", "worker", "--data-dir", str(data_dir)]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                             start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "waiting for jobs" not in log.read_text(errors="replace"):
            assert first.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        second = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
        assert second.returncode == 1
        assert "another `run.py worker`" in second.stderr and f"pid {first.pid}" in second.stderr
        assert first.poll() is None  # the first worker goes on
    finally:
        os.killpg(first.pid, signal.SIGTERM)
        first.wait(timeout=30)
    with sole_worker(data_dir / "index"):  # a stopped worker leaves the data dir to the next one
        pass
