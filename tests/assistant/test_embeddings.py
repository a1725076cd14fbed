"""Question embeddings under concurrent users: batched, and each user gets their own vector."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

QUESTIONS = [f"How many days of leave does a level {n} employee in office {n * 7} get?" for n in range(48)]


def test_concurrent_questions_get_their_own_vectors_in_fewer_passes(embedder: Any) -> None:
    alone = np.vstack([embedder.embed_passages([q])[0] for q in QUESTIONS])
    passes_before = embedder._queries.batches
    with ThreadPoolExecutor(max_workers=24) as pool:
        together = np.vstack(list(pool.map(embedder.embed_query, QUESTIONS)))
    assert np.allclose(together, alone, atol=1e-5)  # padding in a batch changes nothing a user sees
    assert embedder._queries.batches - passes_before < len(QUESTIONS)


def test_the_parts_of_one_question_are_embedded_in_one_pass(embedder: Any) -> None:
    parts = QUESTIONS[:3]
    passes_before = embedder._queries.batches
    vectors = embedder.embed_queries(parts)
    assert embedder._queries.batches - passes_before == 1
    assert np.allclose(vectors, np.vstack([embedder.embed_passages([q])[0] for q in parts]), atol=1e-5)


def test_a_failing_batch_fails_each_of_its_callers_and_the_next_question_works(embedder: Any) -> None:
    from assistant.embeddings import QueryBatcher

    calls: list[list[str]] = []

    def flaky(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            raise RuntimeError("out of memory in the model")
        return embedder.embed_passages(texts)

    batcher = QueryBatcher(flaky)
    with pytest.raises(RuntimeError, match="out of memory"):
        batcher.embed(["first"])
    assert np.allclose(batcher.embed(["second"])[0], embedder.embed_passages(["second"])[0], atol=1e-5)


def test_background_embedding_gives_each_passage_its_own_vector(embedder: Any) -> None:
    passages = [f"{q} " * (1 + n % 5) for n, q in enumerate(QUESTIONS[:21])]  # mixed lengths, reordered inside
    assert np.allclose(embedder.embed_passages(passages, background=True), embedder.embed_passages(passages),
                       atol=1e-5)


def test_background_work_waits_while_a_question_is_being_embedded(embedder: Any) -> None:
    import threading

    from assistant.embeddings import QueryBatcher

    inside, release = threading.Event(), threading.Event()

    def slow(texts: list[str]) -> np.ndarray:
        inside.set()
        release.wait(10)
        return embedder.embed_passages(texts)

    batcher = QueryBatcher(slow)
    asking = threading.Thread(target=batcher.embed, args=(["How many days of leave?"],))
    asking.start()
    assert inside.wait(10)
    assert batcher.wait_until_idle(0.2) is False  # ingest would wait here, not compete for the cores
    release.set()
    assert batcher.wait_until_idle(10) is True
    asking.join(10)
