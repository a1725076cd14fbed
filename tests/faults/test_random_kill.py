"""``kill -9`` of ingest at random moments, run after run on one data dir: nothing acknowledged is lost.

Each run changes the share (new, edited, renamed and deleted files), starts an ingest in a
child process (tests/ingest/crash_runner.py, mode ``random``: product code unchanged) and
SIGKILLs it after a random delay. The next start must find the database, the FAISS index and
the BM25 index holding exactly the same chunks, every file the killed run acknowledged
still searchable, and no retrieved passage pointing at a chunk that does not exist. The
next run starts on top of the wreck; a final ingest must converge to the share exactly.

``ENCLAVE_CRASH_RUNS`` (default 20) and ``ENCLAVE_CRASH_SEED`` (default: random, printed) are
read at import, before the session's fixtures clear ``ENCLAVE_*`` variables.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from assistant.retrieval import Retriever
from assistant.services import Services, build_services
from assistant.settings import load_settings
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow
RUNS = int(os.environ.get("ENCLAVE_CRASH_RUNS", "20"))
SEED = int(os.environ.get("ENCLAVE_CRASH_SEED", str(random.randrange(10**6))))
WORDS = ("leave", "parking", "laptops", "travel", "dental", "badges", "expenses", "training", "payroll", "security")


@dataclass
class Share:
    """The folder being ingested, and every marker each file has carried since it was last acknowledged."""

    root: Path
    rng: random.Random
    markers: dict[str, list[str]] = field(default_factory=dict)
    acked: set[str] = field(default_factory=set)
    serial: int = 0

    def write(self, name: str) -> None:
        self.serial += 1
        marker = f"zq{self.serial:04d}{self.rng.choice('bcdfghjkmnpqrstvwxz')}k"
        topic = self.rng.choice(WORDS)
        text = (f"# {topic.title()} note {self.serial}\n\nThe {topic} record {marker} was filed by the "
                f"{topic} desk. " + f"Further {topic} details follow in plain words. " * self.rng.randint(1, 30))
        (self.root / name).write_text(text, encoding="utf-8")
        self.markers.setdefault(name, []).append(marker)

    def change(self, count: int) -> None:
        """New, edited, renamed and deleted files."""
        names = sorted(self.markers)
        for _ in range(count):
            action = self.rng.choice(["new", "new", "edit", "edit", "delete", "rename"]) if names else "new"
            if action == "new":
                self.write(f"note-{self.serial + 1:04d}.md")
            elif action == "edit":
                self.write(self.rng.choice(names))
            else:
                name = names.pop(self.rng.randrange(len(names)))
                history = self.markers.pop(name)
                if action == "rename":
                    (self.root / name).rename(self.root / f"moved-{name}")
                    self.markers[f"moved-{name}"] = history
                else:
                    (self.root / name).unlink()
                self.acked.discard(name)
            names = sorted(self.markers)

    def acknowledge(self, name: str) -> None:
        """The pipeline reported the file done: its current marker is now promised."""
        if name in self.markers:
            self.markers[name] = self.markers[name][-1:]
            self.acked.add(name)


def _kill_at_random(data_dir: Path, share: Share, delay_s: float | None) -> tuple[bool, list[str], float]:
    """Start an ingest, SIGKILL it ``delay_s`` after it began (None: let it finish).

    Returns whether it was killed mid-run, the files it acknowledged, and the seconds it ran.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.crash_runner", str(data_dir), str(share.root), "random"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first.startswith("ingesting"), f"{first!r} {proc.stderr.read() if proc.stderr else ''}"
    began = time.monotonic()
    if delay_s is not None:
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    ran = time.monotonic() - began
    finished = "finished without crashing" in out
    assert proc.returncode == -9 or finished, err[-2000:]
    acked = [line.split(" ", 2)[2] for line in out.splitlines() if line.startswith(("ack added", "ack updated",
                                                                                    "ack unchanged", "ack renamed"))]
    return not finished, acked, ran


def _check(services: Services, share: Share) -> int:
    """DB, FAISS and BM25 agree; acknowledged files are found; no passage cites a missing chunk."""
    cid = services.corpus.collection_id("default")
    index = services.corpus.index(cid)  # opening reconciles with the database
    truth = sorted(services.corpus.store.chunk_ids(cid).tolist())
    assert sorted(index.vectors.ids().tolist()) == truth
    assert sorted(index.bm25.ids().tolist()) == truth
    retriever = Retriever(services.corpus, services.settings.retrieval)
    known = set(truth)
    for name in sorted(share.acked):
        hits = retriever.retrieve(" ".join(share.markers[name]), top_k=3).passages
        assert all(p.chunk.id in known for p in hits)
        assert name in {p.chunk.file for p in hits}, f"acknowledged {name} is not searchable"
    return len(share.acked)


def _open(data_dir: Path, embedder: Any) -> Services:
    return build_services(load_settings(data_dir=data_dir), embedder=embedder)


def test_random_kills_never_lose_acknowledged_documents(
    embedder: Any, tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    runs, seed = RUNS, SEED
    rng = random.Random(seed)
    share = Share(tmp_path / "share", rng)
    share.root.mkdir()
    share.change(12)
    data_dir = tmp_path / "data"
    started = time.monotonic()
    killed = survived = 0
    acked_per_run: list[int] = []
    # One uninterrupted ingest of the whole share gives the window the kills are spread over.
    _, acked, window = _kill_at_random(data_dir, share, None)
    for name in acked:
        share.acknowledge(name)
    share.change(12)
    for run in range(runs):
        was_killed, acked, _ = _kill_at_random(data_dir, share, rng.uniform(0.0, window))
        killed += was_killed
        acked_per_run.append(len(acked))
        for name in acked:
            share.acknowledge(name)
        services = _open(data_dir, embedder)
        try:
            _check(services, share)
        except AssertionError as exc:
            raise AssertionError(f"run {run + 1} (seed {seed}) broke the store: {exc}") from exc
        finally:
            services.close()
        survived += 1
        share.change(rng.randint(4, 12))
    services = _open(data_dir, embedder)
    try:
        services.ingest.ingest(share.root, sync=True)
        share.acked = set(share.markers)
        assert _check(services, share) == len(share.markers) == services.corpus.status()["documents"]
    finally:
        services.close()
    record_figure("seed (ENCLAVE_CRASH_SEED to replay)", seed)
    record_figure("runs killed mid-ingest / runs", f"{killed}/{runs}")
    record_figure("runs survived", f"{survived}/{runs}")
    record_figure("kill window (s after the ingest began)", round(window, 1))
    record_figure("files acknowledged before the kill, per run", acked_per_run)
    record_figure("seconds", round(time.monotonic() - started, 1))
