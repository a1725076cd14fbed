"""Retrieval quality on any QA folder: Enclave against the llama-index starter (dense and BM25), in one run.

    .venv/bin/python bench/retrieval.py FOLDER [--limit N] [--data-dir DIR] [--json-out PATH] [--skip-starter]

FOLDER is a QA set in the shared format (FOLDER/docs/ + FOLDER/qa.jsonl). Four subprocesses:

1. Enclave ingest: `IngestService.ingest(FOLDER/docs)` into a temporary data dir (or `--data-dir`,
   where an unchanged re-ingest only checks the files).
2. Enclave retrieval, in a fresh process: `Evaluation(services, retrieve_only=True)` over the
   questions, as `run.py eval --retrieve-only` does. `ENCLAVE_*` variables reach the children,
   so any setting can be varied from the command line.
3. The llama-index starter's index: `SimpleDirectoryReader` (one Document per PDF page), the
   default `SentenceSplitter`, `HuggingFaceEmbedding` on Enclave's local model folder,
   `VectorStoreIndex` over `FaissVectorStore(IndexFlatL2)`; persisted under the system temp dir,
   keyed by the folder, its files' sizes and times, the model and the library versions, and
   reused while they are unchanged.
4. The starter's retrieval, in a fresh process: `as_retriever(similarity_top_k=10)`, and over the
   same nodes `BM25Retriever(similarity_top_k=10)` when `llama-index-retrievers-bm25` is installed.

Both sides retrieve in a fresh process that loads only what retrieval needs, so neither is timed
beside the leftovers of embedding a corpus. `--threads N` sets torch's thread count on both sides
(Enclave's `embedding.threads`); on two cores shared with other work, query embedding with two
threads can be ten times slower than with one, so compare latency only within one run.

The starter's rankings are scored by `assistant.evaluation.Scorecard`, the code that scores
Enclave's, so the metric definitions cannot drift apart. Latency is milliseconds per question
measured around each retriever's retrieve call, after one warm-up call on each side.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/retrieval.py` puts bench/ first on sys.path, where bench/ingest.py would shadow
# the project's `ingest` package; the project root takes its place.
sys.path[0] = str(ROOT)

from bench.ingest import OFFLINE_ENV, emit, model_facts, torch_threads, write_json  # noqa: E402
from bench.machine import load_average, machine_info  # noqa: E402

TOP_K = 10
WARM_UP_QUERY = "warm up"
METRICS = ("page_recall@5", "file_recall@1", "file_recall@5", "file_recall@10", "mrr@10")
SIDES = ("enclave", "starter_dense", "starter_bm25")
CACHE_ROOT = Path(tempfile.gettempdir()) / "enclave-bench-retrieval"

Ranked = list[tuple[str, int | None]]


# --- child: Enclave -----------------------------------------------------------------------------

def child_enclave_ingest(dataset: Path, data_dir: Path) -> None:
    """Ingest the set's documents into the data dir (incremental: unchanged files are only checked)."""
    from assistant.offline import enforce_offline

    enforce_offline()
    from assistant.services import build_services
    from assistant.settings import load_settings

    services = build_services(load_settings(data_dir=data_dir))
    try:
        report = services.ingest.ingest(dataset / "docs")
    finally:
        services.close()
    emit({**report.as_json(), "pages": report.pages, "embedded_chunks": report.embedded_chunks})


def child_enclave(dataset: Path, data_dir: Path, limit: int | None) -> None:
    """Evaluate retrieval over the ingested set; report figures and rankings."""
    from assistant.offline import enforce_offline

    enforce_offline()
    from assistant.evaluation import Evaluation, load_qa
    from assistant.services import build_services
    from assistant.settings import load_settings

    settings = load_settings(data_dir=data_dir)
    services = build_services(settings)
    try:
        services.retriever.warm_up()
        evaluation = Evaluation(services, retrieve_only=True)
        report = evaluation.run(load_qa(dataset)[:limit])
    finally:
        services.close()
    emit({
        "report": report,
        "ranked": [r.ranked for r in evaluation.records],
        "settings": {"retrieval": settings.retrieval.model_dump(mode="json"),
                     "embedding_model": str(settings.embedding.model)},
        "environment": {k: v for k, v in sorted(os.environ.items()) if k.startswith("ENCLAVE_")},
        "torch_threads": torch_threads(),
    })


# --- child: llama-index starter -----------------------------------------------------------------

def folder_key(docs: Path, model_dir: str, dim: int) -> str:
    """What the starter's index depends on: the folder, its files' sizes and times, the model, the versions."""
    from importlib.metadata import version

    files = sorted(p for p in docs.rglob("*") if p.is_file())
    parts = [str(docs), model_dir, str(dim), version("llama-index-core"), version("llama-index-vector-stores-faiss"),
             *(f"{p.relative_to(docs)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def child_starter_build(dataset: Path, model_dir: str, dim: int) -> None:
    """Build the starter's vector index over the set's documents and persist it, unless it is cached."""
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    docs = (dataset / "docs").resolve()
    cache = CACHE_ROOT / folder_key(docs, model_dir, dim)
    if (cache / "built.json").is_file():
        emit({"cache": str(cache), "cached": True})
        return
    shutil.rmtree(cache, ignore_errors=True)  # an interrupted build
    started = time.perf_counter()
    # recursive: QA sources are paths relative to docs/, which may have subfolders.
    documents = SimpleDirectoryReader(str(docs), recursive=True).load_data()
    storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatL2(dim)))
    # The starter sets these through the global Settings; passing the defaults explicitly is the same.
    VectorStoreIndex.from_documents(
        documents, storage_context=storage, embed_model=HuggingFaceEmbedding(model_name=model_dir),
        transformations=[SentenceSplitter()],
    )
    seconds = time.perf_counter() - started
    storage.persist(persist_dir=str(cache / "index"))
    # Written last: it marks a complete index.
    (cache / "built.json").write_text(json.dumps({"documents": len(documents), "seconds": seconds}), encoding="utf-8")
    emit({"cache": str(cache), "cached": False, "seconds": seconds, "documents": len(documents)})


def starter_index(cache: Path, embed_model: Any) -> Any:
    """The starter's vector index, loaded from what `child_starter_build` persisted."""
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.vector_stores.faiss import FaissVectorStore

    folder = str(cache / "index")
    storage = StorageContext.from_defaults(vector_store=FaissVectorStore.from_persist_dir(folder), persist_dir=folder)
    return load_index_from_storage(storage, embed_model=embed_model)


def hit_location(node: Any, docs: Path) -> tuple[str, int | None]:
    """A starter hit as (file relative to docs/, page number or None), the shape Enclave's rankings have."""
    meta = node.node.metadata
    path = Path(meta.get("file_path") or meta.get("file_name", ""))
    file = path.relative_to(docs).as_posix() if path.is_absolute() and path.is_relative_to(docs) else path.name
    label = str(meta.get("page_label") or "")
    return file, int(label) if label.isdigit() else None


def ranked_by(retriever: Any, questions: list[str], docs: Path) -> dict[str, Any]:
    """Each question's top hits and the milliseconds its retrieve call took (after one warm-up call)."""
    retriever.retrieve(WARM_UP_QUERY)
    ranked: list[Ranked] = []
    retrieve_ms: list[float] = []
    for question in questions:
        started = time.perf_counter()
        hits = retriever.retrieve(question)
        retrieve_ms.append((time.perf_counter() - started) * 1000)
        ranked.append([hit_location(h, docs) for h in hits[:TOP_K]])
    return {"ranked": ranked, "retrieve_ms": retrieve_ms}


def bm25_retriever(nodes: list[Any]) -> Any | None:
    """llama-index's BM25 retriever over the starter's nodes; None when the package is not installed."""
    try:
        from llama_index.retrievers.bm25 import BM25Retriever
    except ImportError:
        return None
    return BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP_K)


def child_starter(dataset: Path, model_dir: str, dim: int, limit: int | None, threads: int | None) -> None:
    """The starter's dense and BM25 retrievers over the set's documents; report rankings and timings."""
    import torch
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    if threads:
        torch.set_num_threads(threads)
    from assistant.evaluation import load_qa

    docs = (dataset / "docs").resolve()
    questions = [item.question for item in load_qa(dataset)[:limit]]
    index = starter_index(CACHE_ROOT / folder_key(docs, model_dir, dim), HuggingFaceEmbedding(model_name=model_dir))
    nodes = list(index.docstore.docs.values())
    result: dict[str, Any] = {"nodes": len(nodes), "torch_threads": torch_threads()}
    result["starter_dense"] = ranked_by(index.as_retriever(similarity_top_k=TOP_K), questions, docs)
    bm25 = bm25_retriever(nodes)
    result["starter_bm25"] = ranked_by(bm25, questions, docs) if bm25 is not None else None
    emit(result)


# --- parent -------------------------------------------------------------------------------------

def run_child(args: list[str], label: str, threads: int | None = None) -> dict[str, Any]:
    """Run this script in child mode, offline, with the caller's environment (ENCLAVE_* included)."""
    env = {**os.environ, **OFFLINE_ENV}
    if threads:
        env["ENCLAVE_EMBEDDING__THREADS"] = str(threads)
        args = [*args, "--threads", str(threads)]
    proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        sys.exit(f"{label} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT "):])
    return result


def starter_report(dataset: Path, limit: int | None, side: dict[str, Any]) -> dict[str, Any]:
    """Score a starter retriever's rankings with the code that scores Enclave's."""
    from assistant.evaluation import Record, Scorecard, load_qa

    items = load_qa(dataset)[:limit]
    records = [Record(item, [(f, p) for f, p in ranked], ms)
               for item, ranked, ms in zip(items, side["ranked"], side["retrieve_ms"], strict=True)]
    return Scorecard(records, retrieve_only=True).report()


def measure(dataset: Path, data_dir: Path, limit: int | None, skip_starter: bool, threads: int | None,
            ) -> dict[str, Any]:
    """Run both children and score; returns the raw results and a report per side."""
    from assistant.evaluation import load_qa

    limit_args = ["--limit", str(limit)] if limit is not None else []
    enclave_args = [str(dataset), "--data-dir", str(data_dir)]
    print("1/4 Enclave: ingest (incremental) ...", flush=True)
    ingest = run_child(["--child", "enclave-ingest", *enclave_args], "Enclave ingest")
    print("2/4 Enclave: retrieve ...", flush=True)
    enclave = run_child(["--child", "enclave", *enclave_args, *limit_args], "Enclave", threads)
    enclave["ingest"] = ingest
    reports: dict[str, Any] = {"enclave": enclave.pop("report")}
    raw: dict[str, Any] = {"question_ids": [item.id for item in load_qa(dataset)[:limit]],
                           "enclave": enclave, "starter": None}
    if skip_starter:
        return {"reports": reports, "raw": raw}
    model_dir, dim = model_facts(data_dir)
    starter_args = [str(dataset), "--model-dir", model_dir, "--dim", str(dim)]
    print("3/4 llama-index starter: index (unless cached) ...", flush=True)
    build = run_child(["--child", "starter-build", *starter_args], "starter index")
    print("4/4 llama-index starter: retrieve, dense and BM25 ...", flush=True)
    starter = run_child(["--child", "starter", *starter_args, *limit_args], "starter", threads)
    starter["build"] = build
    for side in ("starter_dense", "starter_bm25"):
        if starter[side] is not None:
            reports[side] = starter_report(dataset, limit, starter[side])
    raw["starter"] = starter
    return {"reports": reports, "raw": raw}


def cell(value: float | None, ms: bool = False) -> str:
    """A figure as the table shows it."""
    if value is None:
        return "-"
    return f"{value:.1f}" if ms else f"{value:.3f}"


def ratio(enclave: float | None, starter: float | None) -> str:
    """Enclave's figure over the starter's."""
    return f"{enclave / starter:.2f}x" if enclave is not None and starter else "-"


def print_table(reports: dict[str, Any]) -> None:
    """Each metric for every side measured, with Enclave's ratio to the dense starter."""
    rows = []
    for metric in METRICS:
        values = [reports[s]["retrieval"][metric] if s in reports else None for s in SIDES]
        rows.append((metric, *(cell(v) for v in values), ratio(values[0], values[1])))
    for metric in ("retrieve_p50", "retrieve_p95"):
        values = [reports[s]["latency_ms"][metric] if s in reports else None for s in SIDES]
        rows.append((f"{metric} (ms)", *(cell(v, ms=True) for v in values), ratio(values[0], values[1])))
    header = ("metric", "Enclave", "starter dense", "starter BM25", "Enclave/dense")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        first, *rest = row
        print("  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]))


def print_context(result: dict[str, Any]) -> None:
    """What was measured: the corpus on each side, the settings, what was skipped or cached."""
    enclave, starter = result["raw"]["enclave"], result["raw"]["starter"]
    report = result["reports"]["enclave"]
    print(f"\n{report['questions']} questions; Enclave ingest: {enclave['ingest']['added']} added, "
          f"{enclave['ingest']['unchanged']} unchanged, {enclave['ingest']['chunks']} chunks, "
          f"{enclave['ingest']['seconds']:.1f} s; retrieval settings {json.dumps(enclave['settings']['retrieval'])}")
    if enclave["environment"]:
        print(f"ENCLAVE_* in force: {enclave['environment']}")
    if starter is None:
        print("starter: skipped (--skip-starter)")
        return
    build = starter["build"]
    how = "found in the cache" if build["cached"] else f"built in {build['seconds']:.1f} s and cached"
    print(f"starter: {starter['nodes']} nodes, index {how} ({build['cache']})")
    if starter["starter_bm25"] is None:
        print("starter BM25: skipped, llama-index-retrievers-bm25 is not installed (see bench/README.md)")
    print(f"torch threads: Enclave {enclave['torch_threads']}, starter {starter['torch_threads']}")


def main() -> None:
    """Parse arguments; run a child mode or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="A QA set: docs/ and qa.jsonl.")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N questions.")
    parser.add_argument("--data-dir", type=Path, default=None, help="Enclave data dir to ingest into and reuse.")
    parser.add_argument("--json-out", type=Path, default=None, help="Default: bench/results/retrieval-<folder>.json.")
    parser.add_argument("--skip-starter", action="store_true", help="Measure Enclave only.")
    parser.add_argument("--threads", type=int, default=None, help="Torch threads on both sides (default: torch's).")
    for hidden in ("--child", "--model-dir", "--dim"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    dataset = args.folder.resolve()
    if args.child:
        run_child_mode(args, dataset)
        return
    if not (dataset / "docs").is_dir() or not (dataset / "qa.jsonl").is_file():
        sys.exit(f"{dataset} is not a QA set: it needs docs/ and qa.jsonl")
    command = shlex.join([".venv/bin/python", "bench/retrieval.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-retrieval-") as scratch:
        data_dir = (args.data_dir or Path(scratch) / "enclave").resolve()
        result = measure(dataset, data_dir, args.limit, args.skip_starter, args.threads)
    load_end = load_average()
    print()
    print_table(result["reports"])
    print_context(result)
    print(f"load average at end: {load_end} ({os.cpu_count()} CPUs; other work on the machine makes figures noisy)")
    json_out = args.json_out or ROOT / "bench" / "results" / f"retrieval-{dataset.name}.json"
    write_json(json_out, {"command": command, "folder": str(dataset), "limit": args.limit, "threads": args.threads,
                          "data_dir": str(args.data_dir) if args.data_dir else None, "machine": machine_info(),
                          "load_average": {"start": load_start, "end": load_end},
                          "settings": result["raw"]["enclave"]["settings"], **result})


def run_child_mode(args: argparse.Namespace, dataset: Path) -> None:
    """Dispatch to one child measurement."""
    if args.child == "enclave-ingest":
        child_enclave_ingest(dataset, Path(args.data_dir))
    elif args.child == "enclave":
        child_enclave(dataset, Path(args.data_dir), args.limit)
    elif args.child == "starter-build":
        child_starter_build(dataset, args.model_dir, int(args.dim))
    elif args.child == "starter":
        child_starter(dataset, args.model_dir, int(args.dim), args.limit, args.threads)
    else:
        sys.exit(f"unknown child mode {args.child!r}")


if __name__ == "__main__":
    main()
