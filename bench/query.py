"""Retrieval latency benchmark: Enclave's retriever against the llama-index starter retriever.

    .venv/bin/python bench/query.py [--sizes 10000,100000] [--queries 200] [--json-out PATH]

For each corpus size N, a synthetic corpus of N chunks is written through Enclave's
DocumentStore and opened through its IndexStore (FAISS + BM25, built from the database),
then ~200 real questions go through `Retriever.retrieve`: query embedding, FAISS, BM25,
fusion and the database lookup of the chunk rows, timed end to end. The baseline, in the
same run and process, is the llama-index starter retriever over the same vectors:
`VectorStoreIndex` over `FaissVectorStore(IndexFlatL2)` with `HuggingFaceEmbedding` (same
model), `index.as_retriever(similarity_top_k=5).retrieve(q)`.

How the corpus is made: contoso-hr is ingested with Enclave to get real chunks and their
real embeddings (embedding 100k passages would take hours on two cores). Each synthetic
chunk joins sentences of two real chunks (~150 model tokens), and its vector is the
normalised mix of theirs plus a little Gaussian noise. Queries are the questions of
contoso-hr's qa.jsonl. Without ../shared, passages and questions are generated from a made-up
vocabulary and embedded here.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from bench.machine import load_average, machine_info  # noqa: E402

DEFAULT_DATASET = ROOT.parent / "shared" / "datasets" / "contoso-hr"
DEFAULT_JSON = ROOT / "bench" / "results" / "query.json"
TARGET_P50_MS = 30.0
TARGET_SIZE = 100_000
CHUNK_WORDS = 110  # about 150 model tokens of English prose
CHUNKS_PER_DOC = 50
CHUNKS_PER_PAGE = 10
NOISE = 0.25
WARMUP = 5
BREAKDOWN_QUERIES = 50
STARTER_BUILD_BUDGET_S = 240.0
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclass
class SourcePassage:
    """A real chunk with its real embedding, raw material for the synthetic corpus."""

    file: str
    heading: str
    sentences: list[str]
    vector: np.ndarray


@dataclass
class SyntheticCorpus:
    """N chunks: where each sits and what it says, and one unit vector each."""

    files: list[str]
    headings: list[str]
    texts: list[str]
    vectors: np.ndarray


@dataclass
class Setup:
    """What every size shares: the embedder, a settings factory, source passages and queries."""

    embedder: Any
    settings_for: Callable[[Path], Any]
    sources: list[SourcePassage]
    queries: list[str]
    origin: str


# --- statistics -------------------------------------------------------------------------------

def latency_stats(ms: Sequence[float]) -> dict[str, float]:
    """p50, p95 and mean of latencies in milliseconds."""
    arr = np.asarray(ms, dtype=np.float64)
    return {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)), "mean": float(arr.mean()),
            "n": len(arr)}


def time_calls(call: Callable[[str], Any], queries: list[str]) -> list[float]:
    """Milliseconds of each call, after a few warm-up calls."""
    for q in queries[:WARMUP]:
        call(q)
    out = []
    for q in queries:
        started = time.perf_counter()
        call(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


# --- source material ----------------------------------------------------------------------------

def split_sentences(text: str) -> list[str]:
    """Sentences (or lines) of a chunk, blanks dropped."""
    return [s.strip() for s in SENTENCE_RE.split(text) if s.strip()]


def real_passages(services: Any, docs: Path) -> list[SourcePassage]:
    """Ingest a folder with Enclave and read back every chunk with its stored embedding."""
    from sqlalchemy import select

    from storage.models import Chunk, Document

    report = services.ingest.ingest(docs, collection="source")
    print(f"  ingested {docs}: {report.chunks} chunks in {report.seconds:.1f} s", flush=True)
    query = select(Document.path, Chunk.heading, Chunk.text, Chunk.embedding).join(
        Document, Document.id == Chunk.document_id
    )
    with services.db.session() as session:
        rows = session.execute(query).all()
    return [SourcePassage(path, heading, split_sentences(text), np.frombuffer(blob, dtype=np.float32))
            for path, heading, text, blob in rows]


def generated_passages(embedder: Any, rng: random.Random, n: int = 600) -> tuple[list[SourcePassage], list[str]]:
    """Passages and questions from a made-up vocabulary, embedded here (used without ../shared)."""
    syllables = ["ben", "ef", "it", "plan", "cov", "er", "age", "de", "duct", "ible", "pol", "ic", "y", "claim",
                 "sal", "ar", "em", "ploy", "ee", "leave", "va", "ca", "tion", "health", "den", "tal"]
    vocab = sorted({"".join(rng.choices(syllables, k=rng.randint(1, 3))) for _ in range(3000)})

    def sentence() -> str:
        return " ".join(rng.choices(vocab, k=rng.randint(8, 18))).capitalize() + "."

    texts = [" ".join(sentence() for _ in range(8)) for _ in range(n)]
    vectors = embedder.embed_passages(texts)
    passages = [SourcePassage(f"generated_{i // 20:03d}.pdf", "", split_sentences(t), v)
                for i, (t, v) in enumerate(zip(texts, vectors, strict=True))]
    questions = [" ".join(rng.choices(vocab, k=rng.randint(4, 9))) + "?" for _ in range(400)]
    return passages, questions


def load_questions(dataset: Path) -> list[str]:
    """The questions of a QA set's qa.jsonl."""
    lines = (dataset / "qa.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["question"] for line in lines if line.strip()]


def mix_vectors(
    base: np.ndarray, firsts: np.ndarray, seconds: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Unit vectors, each a random mix of two real embeddings plus a little Gaussian noise."""
    n = len(firsts)
    weights = rng.uniform(0.5, 0.8, n).astype(np.float32)[:, None]
    noise = rng.standard_normal((n, base.shape[1]), dtype=np.float32) * np.float32(NOISE / np.sqrt(base.shape[1]))
    vectors = weights * base[firsts] + (1 - weights) * base[seconds] + noise
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


def synthesize(sources: list[SourcePassage], n: int, seed: int) -> SyntheticCorpus:
    """N chunks, each joining sentences of two real chunks, its vector their noisy mix."""
    rng = np.random.default_rng(seed)
    base = np.vstack([s.vector for s in sources]).astype(np.float32)
    firsts = rng.integers(0, len(sources), n)
    seconds = rng.integers(0, len(sources), n)
    vectors = mix_vectors(base, firsts, seconds, rng)
    texts = [_join(sources[a].sentences, sources[b].sentences) for a, b in zip(firsts, seconds, strict=True)]
    files = [_synthetic_path(sources[firsts[i - i % CHUNKS_PER_DOC]].file, i // CHUNKS_PER_DOC) for i in range(n)]
    return SyntheticCorpus(files, [sources[a].heading for a in firsts], texts, vectors)


def _join(first: list[str], second: list[str]) -> str:
    words: list[str] = []
    for sentence in [*first, *second]:
        words += sentence.split()
        if len(words) >= CHUNK_WORDS:
            break
    return " ".join(words[: CHUNK_WORDS + 20])


def _synthetic_path(source_file: str, doc_no: int) -> str:
    stem, _, suffix = Path(source_file).name.rpartition(".")
    return f"{stem}_{doc_no:05d}.{suffix}" if stem else f"{source_file}_{doc_no:05d}"


# --- Enclave ------------------------------------------------------------------------------------

def enclave_documents(corpus: SyntheticCorpus) -> list[Any]:
    """The corpus as NewDocuments of CHUNKS_PER_DOC chunks, CHUNKS_PER_PAGE chunks a page."""
    from storage.documents import ChunkDraft, NewDocument

    docs = []
    for start in range(0, len(corpus.texts), CHUNKS_PER_DOC):
        chunks = []
        for i in range(start, min(start + CHUNKS_PER_DOC, len(corpus.texts))):
            ordinal = (i - start) // CHUNKS_PER_PAGE
            text = corpus.texts[i]
            chunks.append(ChunkDraft(ordinal, ordinal + 1, corpus.headings[i], text, 0, len(text),
                                     int(len(text.split()) * 1.35)))
        pages: list[tuple[int | None, str]] = [(p + 1, "(synthetic page)") for p in range(chunks[-1].page_ordinal + 1)]
        vectors = corpus.vectors[start : start + len(chunks)]
        docs.append(NewDocument(corpus.files[start], f"synthetic-{start}", 1, 0, None, pages, chunks, vectors))
    return docs


def build_enclave(services: Any, corpus: SyntheticCorpus) -> dict[str, float]:
    """Write the corpus to the database, then open (build) and save the collection index."""
    store = services.corpus.store
    cid = services.corpus.collection_id("default", create=True)
    docs = enclave_documents(corpus)
    started = time.perf_counter()
    for at in range(0, len(docs), 100):
        store.write_documents(cid, "/synthetic", docs[at : at + 100])
    written = time.perf_counter()
    index = services.corpus.index(cid)
    built = time.perf_counter()
    if len(index) != len(corpus.texts):
        sys.exit(f"Enclave index holds {len(index)} chunks, expected {len(corpus.texts)}")
    return {"db_write_s": written - started, "index_build_s": built - written}


def enclave_breakdown(services: Any, queries: list[str]) -> dict[str, float]:
    """Median milliseconds of each step of a retrieval, timed one at a time."""
    cid = services.corpus.collection_id("default")
    index = services.corpus.index(cid)
    embedder = services.corpus.embedder
    n = services.settings.retrieval.candidates
    vectors = {q: embedder.embed_query(q) for q in queries}
    top_ids = {q: [i for i, _ in index.vectors.search(vectors[q], 20)] for q in queries}
    steps: dict[str, Callable[[str], Any]] = {
        "query_embedding": embedder.embed_query,
        "faiss": lambda q: index.vectors.search(vectors[q], n),
        "bm25": lambda q: index.bm25.search(q, n),
        "chunk_rows": lambda q: services.corpus.store.chunks_by_id(top_ids[q]),
    }
    return {name: latency_stats(time_calls(step, queries))["p50"] for name, step in steps.items()}


def measure_enclave(setup: Setup, corpus: SyntheticCorpus, scratch: Path) -> dict[str, Any]:
    """Build an Enclave store of the corpus and time `Retriever.retrieve` on every query."""
    from assistant.services import build_services

    queries = setup.queries
    data_dir = scratch / f"enclave-{len(corpus.texts)}"
    services = build_services(setup.settings_for(data_dir), embedder=setup.embedder)
    try:
        build = build_enclave(services, corpus)
        empty = sum(not services.retriever.retrieve(q).passages for q in queries[:20])
        latencies = time_calls(services.retriever.retrieve, queries)
        breakdown = enclave_breakdown(services, queries[:BREAKDOWN_QUERIES])
    finally:
        services.close()
    return {**build, "latency_ms": latency_stats(latencies), "step_p50_ms": breakdown, "empty_results": empty}


# --- llama-index starter ------------------------------------------------------------------------

def measure_starter(embed_model: Any, corpus: SyntheticCorpus, queries: list[str]) -> dict[str, Any]:
    """The starter retriever over the same vectors; time `retrieve` on every query."""
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.vector_stores.faiss import FaissVectorStore

    started = time.perf_counter()
    nodes = [TextNode(id_=str(i), text=text, metadata={"file_name": file}, embedding=vector.tolist())
             for i, (text, file, vector) in enumerate(zip(corpus.texts, corpus.files, corpus.vectors, strict=True))]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatL2(corpus.vectors.shape[1]))
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store),
                             embed_model=embed_model)
    build_s = time.perf_counter() - started
    del nodes
    retriever = index.as_retriever(similarity_top_k=5)
    latencies = time_calls(retriever.retrieve, queries)
    return {"build_s": build_s, "latency_ms": latency_stats(latencies)}


def starter_fits(size: int, previous: tuple[int, float] | None) -> tuple[bool, float | None]:
    """Whether building the starter index at ``size`` should fit the budget, from the last build's rate."""
    if previous is None:
        return True, None
    estimate = previous[1] * size / previous[0]
    return estimate <= STARTER_BUILD_BUDGET_S, estimate


# --- driver -------------------------------------------------------------------------------------

def prepare(dataset: Path, scratch: Path, n_queries: int, threads: int) -> Setup:
    """Load Enclave's embedder, gather source passages and questions; says where they came from."""
    from assistant.embeddings import SentenceTransformerEmbedder
    from assistant.services import build_services
    from assistant.settings import load_settings

    def settings_for(data_dir: Path) -> Any:
        if threads:
            return load_settings(data_dir=data_dir, embedding={"threads": threads})
        return load_settings(data_dir=data_dir)

    embedder = SentenceTransformerEmbedder(settings_for(scratch / "source").embedding)
    rng = random.Random(7)
    if (dataset / "docs").is_dir() and (dataset / "qa.jsonl").is_file():
        services = build_services(settings_for(scratch / "source"), embedder=embedder)
        try:
            sources = real_passages(services, dataset / "docs")
        finally:
            services.close()
        questions, origin = load_questions(dataset), f"chunks and questions of {dataset.name}"
    else:
        print(f"  {dataset} not found: using generated vocabulary", flush=True)
        sources, questions = generated_passages(embedder, rng)
        origin = "generated vocabulary (dataset absent)"
    return Setup(embedder, settings_for, sources, rng.sample(questions, min(n_queries, len(questions))), origin)


def run(sizes: list[int], dataset: Path, n_queries: int, threads: int) -> dict[str, Any]:
    """Every size: Enclave, then the starter retriever, on the same synthetic corpus and queries."""
    import torch
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    results: dict[str, Any] = {"sizes": {}}
    with tempfile.TemporaryDirectory(prefix="enclave-bench-query-") as tmp:
        scratch = Path(tmp)
        print("preparing source passages ...", flush=True)
        setup = prepare(dataset, scratch, n_queries, threads)
        embed_model = HuggingFaceEmbedding(model_name=str(setup.embedder.folder))
        # torch's thread count is per process, so both retrievers embed queries with the same threads.
        results.update(source=setup.origin, source_passages=len(setup.sources), queries=len(setup.queries),
                       torch_threads=torch.get_num_threads())
        previous: tuple[int, float] | None = None
        for size in sizes:
            print(f"{size:,} chunks: synthesizing, building Enclave's store, querying ...", flush=True)
            corpus = synthesize(setup.sources, size, seed=size)
            entry: dict[str, Any] = {"enclave": measure_enclave(setup, corpus, scratch)}
            fits, estimate = starter_fits(size, previous)
            if fits:
                print(f"{size:,} chunks: llama-index starter retriever ...", flush=True)
                entry["starter"] = measure_starter(embed_model, corpus, setup.queries)
                previous = (size, entry["starter"]["build_s"])
            else:
                entry["starter"] = {"skipped": f"building it would take about {estimate:.0f} s "
                                               f"(budget {STARTER_BUILD_BUDGET_S:.0f} s)"}
            entry["mean_words"] = float(np.mean([len(t.split()) for t in corpus.texts[:2000]]))
            results["sizes"][str(size)] = entry
            del corpus
    return results


def print_table(results: dict[str, Any]) -> None:
    """Latency per size, Enclave beside the starter retriever, with the ratio and the target."""
    header = ("chunks", "Enclave p50", "p95", "starter p50", "p95", "ratio p50", "target")
    rows = []
    for size, entry in results["sizes"].items():
        ours, base = entry["enclave"]["latency_ms"], entry["starter"]
        target = ""
        if int(size) == TARGET_SIZE:
            target = f"p50 < {TARGET_P50_MS:.0f} ms: {'met' if ours['p50'] < TARGET_P50_MS else 'MISSED'}"
        if "latency_ms" in base:
            b = base["latency_ms"]
            rows.append((f"{int(size):,}", f"{ours['p50']:.1f} ms", f"{ours['p95']:.1f} ms", f"{b['p50']:.1f} ms",
                         f"{b['p95']:.1f} ms", f"{ours['p50'] / b['p50']:.2f}x", target))
        else:
            rows.append((f"{int(size):,}", f"{ours['p50']:.1f} ms", f"{ours['p95']:.1f} ms", "skipped", "", "", target))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))
    print()
    for size, entry in results["sizes"].items():
        e, steps = entry["enclave"], entry["enclave"]["step_p50_ms"]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
        print(f"{int(size):,} chunks: Enclave step p50 (ms): {parts}; DB write {e['db_write_s']:.1f} s, "
              f"index build {e['index_build_s']:.1f} s; starter "
              + (f"build {entry['starter']['build_s']:.1f} s" if "build_s" in entry["starter"]
                 else entry["starter"]["skipped"]))


def main() -> None:
    """Parse arguments, run every size, print and write the figures."""
    from assistant.offline import enforce_offline

    enforce_offline()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000", help="Corpus sizes in chunks, comma-separated.")
    parser.add_argument("--queries", type=int, default=200, help="Questions to time at each size.")
    parser.add_argument("--dataset", type=Path, default=DEFAULT_DATASET, help="QA set: docs/ and qa.jsonl.")
    parser.add_argument("--threads", type=int, default=0,
                        help="Torch threads for both retrievers (Enclave's embedding.threads); 0 keeps the default.")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="Where to write the figures.")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    command = shlex.join([".venv/bin/python", "bench/query.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    results = run(sizes, args.dataset.resolve(), args.queries, args.threads)
    load_end = load_average()
    print(f"\ncorpus: {results['source_passages']} real passages ({results['source']}) mixed into N synthetic "
          f"chunks of ~{CHUNK_WORDS} words; vectors are mixes of real embeddings plus noise, not embeddings of "
          f"the synthetic text. {results['queries']} queries, query embedding included; "
          f"torch threads {results['torch_threads']}.\n")
    print_table(results)
    print(f"load average at end: {load_end} ({os.cpu_count()} CPUs; other work on the machine makes figures noisy)")
    payload = {"command": command, "machine": machine_info(), "load_average": {"start": load_start, "end": load_end},
               "target": {"size": TARGET_SIZE, "p50_ms_max": TARGET_P50_MS}, **results}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.json_out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(args.json_out)
    print(f"wrote {args.json_out}")


if __name__ == "__main__":
    main()
