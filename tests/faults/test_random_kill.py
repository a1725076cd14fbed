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
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

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


COMMITTED = ("ack added", "ack updated", "ack renamed")


def _kill_at_random(data_dir: Path, share: Share, anchor: str, delay_s: float | None) -> tuple[bool, list[str], float]:
    """Start an ingest and SIGKILL it ``delay_s`` after ``anchor`` (None: let it finish).

    ``anchor`` is ``ingesting`` (the run began) or ``commit`` (its first files were committed
    and acknowledged; a run that commits only once would otherwise rarely die after it).
    Returns whether it was killed mid-run, the files it acknowledged, and seconds since the anchor.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.ingest.crash_runner", str(data_dir), str(share.root), "random"],
        cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    seen = {"ingesting": threading.Event(), "commit": threading.Event()}

    def read(stream: IO[str]) -> None:
        for raw in stream:
            lines.append(raw.strip())
            if raw.startswith("ingesting"):
                seen["ingesting"].set()
            elif raw.startswith(COMMITTED):
                seen["commit"].set()
        for event in seen.values():
            event.set()  # the process ended: stop waiting for what will not come

    assert proc.stdout is not None and proc.stderr is not None
    reader = threading.Thread(target=read, args=(proc.stdout,))
    reader.start()
    seen[anchor].wait(timeout=300)
    began = time.monotonic()
    if delay_s is not None and proc.poll() is None:
        time.sleep(delay_s)
        proc.send_signal(signal.SIGKILL)
    err = proc.stderr.read()
    proc.wait(timeout=300)
    reader.join(timeout=30)
    finished = "finished without crashing" in lines
    assert proc.returncode == -9 or finished, err[-2000:]
    acked = [line.split(" ", 2)[2] for line in lines if line.startswith((*COMMITTED, "ack unchanged"))]
    return not finished, acked, time.monotonic() - began


def _check(services: Services, share: Share) -> int:
    """DB, FAISS and BM25 agree; acknowledged files are found; no passage cites a missing chunk.

    BM25 holds every chunk in the database, FAISS the embedded ones: a run killed between a file's
    keyword write and its embeddings leaves chunks keyword-searchable only, for the next run to embed.
    """
    cid = services.corpus.collection_id("default")
    index = services.corpus.index(cid)  # opening reconciles with the database
    truth = sorted(services.corpus.store.chunk_ids(cid).tolist())
    assert sorted(index.vectors.ids().tolist()) == sorted(services.corpus.store.chunk_ids(cid, embedded=True).tolist())
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


def _converge(data_dir: Path, embedder: Any, share: Share) -> None:
    """A last, uninterrupted ingest leaves exactly the share's files, each one searchable."""
    services = _open(data_dir, embedder)
    try:
        services.ingest.ingest(share.root, sync=True)
        share.acked = set(share.markers)
        assert _check(services, share) == len(share.markers) == services.corpus.status()["documents"]
        cid = services.corpus.collection_id("default")
        waiting = set(services.corpus.store.chunk_ids(cid).tolist()) - set(
            services.corpus.store.chunk_ids(cid, embedded=True).tolist())
        assert not waiting, f"{len(waiting)} chunks were never embedded"
    finally:
        services.close()


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
    _, acked, window = _kill_at_random(data_dir, share, "ingesting", None)
    for name in acked:
        share.acknowledge(name)
    share.change(12)
    for run in range(runs):
        anchor = "commit" if run % 2 else "ingesting"
        delay = rng.uniform(0.0, 0.6 if anchor == "commit" else window)
        was_killed, acked, _ = _kill_at_random(data_dir, share, anchor, delay)
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
    _converge(data_dir, embedder, share)
    record_figure("seed (ENCLAVE_CRASH_SEED to replay)", seed)
    record_figure("runs killed mid-ingest / runs", f"{killed}/{runs}")
    record_figure("runs survived", f"{survived}/{runs}")
    record_figure("kill window (s after the ingest began)", round(window, 1))
    record_figure("files acknowledged (incl. unchanged) before the kill, per run; odd runs die after a commit",
                  acked_per_run)
    record_figure("seconds", round(time.monotonic() - started, 1))
