"""Searchable within seconds: a file is found by keyword search before its embeddings exist, by both after.

The embedding step is held back by a gate around the real model (a double at the
embedder protocol, injected the way the app injects its embedder), so the window between
the keyword write and the embedding is observed, not guessed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT

QUESTION = "Which courier delivers the quarterly zeppelin parts?"
FACTS = {
    "zeppelin.md": "# Zeppelin parts\n\nThe quarterly zeppelin parts are delivered by Brightwater Couriers.\n",
    "canteen.txt": "The canteen serves soup on Tuesdays and fish on Fridays.\n",
    "printers.txt": "Printer toner is ordered through the facilities desk.\n",
}


class GatedEmbedder:
    """The real embedder; passages wait for ``gate`` (questions do not), so ingest's embedding step lags."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name: str = inner.name
        self.dim: int = inner.dim
        self.gate = threading.Event()

    def embed_passages(self, texts: list[str], background: bool = False) -> np.ndarray:
        """Embed once the gate opens."""
        assert self.gate.wait(120), "the test never opened the embedding gate"
        return self.inner.embed_passages(texts, background)

    def embed_query(self, text: str) -> np.ndarray:
        """Not held."""
        return self.inner.embed_query(text)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Not held."""
        return self.inner.embed_queries(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Delegated."""
        return list(self.inner.count_tokens(texts))


class SlowLoadingEmbedder(GatedEmbedder):
    """The real embedder behind a model load that lasts until ``gate`` opens, as a cold start's load does."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.name = inner.name
        self.gate = threading.Event()
        self.loads = 0

    @property
    def inner(self) -> Any:  # type: ignore[override]
        """The model, once its load is done."""
        self.loads += 1
        assert self.gate.wait(120), "the test never let the model load"
        return self._inner

    @property
    def dim(self) -> int:  # type: ignore[override]
        """Known only once loaded."""
        return int(self.inner.dim)


def _share(root: Path) -> Path:
    root.mkdir()
    for name, text in FACTS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _files_found(services: Any) -> dict[str, Any]:
    """The retrieved passages for QUESTION by file (retrieval as a question sees it)."""
    return {p.chunk.file: p for p in services.retriever.retrieve(QUESTION, top_k=3).passages}


def _wait_for(condition: Any, seconds: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_file_is_keyword_searchable_before_its_embeddings_then_dense(
    embedder: Any, isolated_paths: Path, tmp_path: Path
) -> None:
    from assistant.events import Done, Stage, Status
    from assistant.services import build_services
    from assistant.settings import load_settings

    gated = GatedEmbedder(embedder)
    services = build_services(load_settings(data_dir=isolated_paths), embedder=gated)
    share = _share(tmp_path / "share")
    pool = ThreadPoolExecutor(max_workers=1)
    run = pool.submit(services.ingest.ingest, share)
    try:
        _wait_for(lambda: "zeppelin.md" in _files_found(services))
        found = _files_found(services)["zeppelin.md"]
        assert found.dense is None and found.bm25 is not None  # keyword only: no embedding exists yet
        cid = services.corpus.collection_id("default")
        assert len(services.corpus.store.chunk_ids(cid, embedded=False))  # nothing embedded while the gate holds
        events = list(services.answers.ask(QUESTION, retrieve_only=True))
        notes = [e.detail for e in events if isinstance(e, Status) and e.stage is Stage.INDEXING]
        assert notes and "still indexing 3 files" in notes[0]
        answer = next(e.answer for e in events if isinstance(e, Done))
        assert answer.as_json()["indexing"] == notes[0]
        assert "zeppelin.md" in {p.chunk.file for p in answer.retrieved}
    finally:
        gated.gate.set()
        pool.shutdown(wait=True)
    try:
        assert run.result().added == 3
        found = _files_found(services)["zeppelin.md"]
        assert found.dense is not None  # dense search covers it now
        assert not len(services.corpus.store.chunk_ids(cid, embedded=False))
        events = list(services.answers.ask(QUESTION, retrieve_only=True))
        assert not [e for e in events if isinstance(e, Status) and e.stage is Stage.INDEXING]
        assert next(e.answer for e in events if isinstance(e, Done)).indexing is None
    finally:
        services.close()


def test_a_fresh_install_keyword_searches_its_files_before_the_model_has_loaded(
    embedder: Any, isolated_paths: Path, tmp_path: Path
) -> None:
    """The first ingest on a new data dir: the index opens from the model's declared width, not its load."""
    from assistant.services import build_services
    from assistant.settings import load_settings

    loading = SlowLoadingEmbedder(embedder)
    services = build_services(load_settings(data_dir=isolated_paths), embedder=loading)
    pool = ThreadPoolExecutor(max_workers=1)
    run = pool.submit(services.ingest.ingest, _share(tmp_path / "share"))
    try:
        corpus = services.corpus
        _wait_for(lambda: corpus.store.collection_id("default") is not None
                  and len(corpus.store.chunk_ids(corpus.collection_id("default"))) == len(FACTS))
        index = corpus.index(corpus.collection_id("default"))
        best_id = index.search_bm25(QUESTION, 3)[0][0]
        assert corpus.store.chunks_by_id([best_id])[best_id].file == "zeppelin.md"
        assert not loading.gate.is_set()  # every file found while the model is still loading
    finally:
        loading.gate.set()
        pool.shutdown(wait=True)
    try:
        assert run.result().added == 3 and loading.loads
        assert _files_found(services)["zeppelin.md"].dense is not None
    finally:
        services.close()


def test_ingest_reports_files_added_as_they_become_keyword_searchable(make_services: Any, tmp_path: Path) -> None:
    services = make_services(ingest={"embed_group_chunks": 1})
    report = services.ingest.ingest(_share(tmp_path / "share"))
    assert report.added == 3 and report.embedded_chunks == report.chunks == 3
    assert {"parse", "embed"} <= set(report.phases)
    index = services.corpus.index(services.corpus.collection_id("default"))
    assert sorted(index.ids().tolist()) == sorted(services.corpus.store.chunk_ids(index.collection_id).tolist())


@pytest.mark.slow
def test_killed_after_keyword_write_is_keyword_searchable_then_embedded_on_resume(
    make_services: Any, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    share = _share(tmp_path / "share")
    proc = subprocess.run(
        [sys.executable, "-m", "tests.ingest.crash_runner", str(data_dir), str(share), "after_commit_before_index"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    asked = subprocess.run(
        [sys.executable, "run.py", "ask", QUESTION, "--retrieve-only", "--json", "--data-dir", str(data_dir)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert asked.returncode == 0, asked.stderr[-2000:]
    answer = json.loads(asked.stdout)
    assert answer["indexing"] and "still indexing 3 files" in answer["indexing"]
    assert answer["retrieved"][0]["file"] == "zeppelin.md"  # from keyword search alone
    services = make_services(data_dir)
    report = services.ingest.ingest(share)
    assert report.unchanged == 3 and report.embedded_chunks == 3  # the next run embeds what the killed one left
    cid = services.corpus.collection_id("default")
    assert not len(services.corpus.store.chunk_ids(cid, embedded=False))
    assert _files_found(services)["zeppelin.md"].dense is not None
