"""Ingest benchmark: Enclave against the llama-index starter pipeline, on the same folder, in one run.

    .venv/bin/python bench/ingest.py [FOLDER] [--json-out PATH]

Each pipeline runs in a fresh subprocess with a fresh data dir, so interpreter start, imports
and model load count for both. Measured, in this order:

1. Enclave: `IngestService.ingest` (what `run.py ingest` calls) plus one retrieval, timed from
   the moment the subprocess is launched until that retrieval returns ("time to full index":
   every file dense- and keyword-searchable). "Time to first search" is when the last file
   became keyword-searchable (the ingest reports each file as its chunks enter the BM25
   index, before their embeddings exist) and a keyword search returned, timed the same way.
   The embedder is wrapped so the seconds spent in `embed_passages` are known.
2. The llama-index starter pipeline: `SimpleDirectoryReader` + default `SentenceSplitter` +
   `HuggingFaceEmbedding` (the same local model folder) + `VectorStoreIndex` over
   `FaissVectorStore(IndexFlatL2)`, timed the same way until one retrieval returns (its time to
   searchable: nothing is searchable before its index is built).
3. The embedding model's compute limit: `SentenceTransformer.encode` tokens/s on ~200-token
   passages (the chunks Enclave embedded), best over a few batch sizes.
4. Enclave's unchanged re-ingest: the real CLI, `run.py ingest FOLDER --data-dir DIR --json`.

Tokens are the embedding model's: source tokens are the parsed text without special tokens;
embedding tokens are model inputs ([CLS] and [SEP] included, truncated to max_seq_length),
the same unit for Enclave's achieved rate and for the compute limit.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/ingest.py` puts bench/ first on sys.path, where this file would shadow the
# project's `ingest` package; the project root takes its place.
sys.path[0] = str(ROOT)

from bench.machine import load_average, machine_info  # noqa: E402

DEFAULT_FOLDER = ROOT.parent / "shared" / "datasets" / "contoso-hr" / "docs"
DEFAULT_JSON = ROOT / "bench" / "results" / "ingest.json"
PROBE_QUERY = "How many days of paid time off do employees get?"
LIMIT_PASSAGES = 64
LIMIT_BATCH_SIZES = (4, 8, 16, 32, 64)
TARGETS = {"full_index_ratio_max": 1.0, "first_search_ratio_max": 0.25, "compute_share_min": 0.7,
           "unchanged_ratio_max": 0.05}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
               "TOKENIZERS_PARALLELISM": "false", "DO_NOT_TRACK": "1"}


# --- shared helpers -------------------------------------------------------------------------

def tokenizer_for(model_dir: str) -> Any:
    """The model's fast tokenizer, without truncation or padding."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def source_tokens(model_dir: str, texts: list[str]) -> int:
    """Model tokens in parsed text, special tokens excluded, nothing truncated."""
    encoded = tokenizer_for(model_dir).encode_batch(texts, add_special_tokens=False)
    return sum(len(e.ids) for e in encoded)


def input_tokens(model_dir: str, texts: list[str], max_len: int) -> list[int]:
    """Tokens the model computes over per text: special tokens included, cut at ``max_len``."""
    encoded = tokenizer_for(model_dir).encode_batch(texts, add_special_tokens=True)
    return [min(len(e.ids), max_len) for e in encoded]


def torch_threads() -> int:
    """Intra-op threads torch uses in this process."""
    import torch

    return int(torch.get_num_threads())


def emit(payload: dict[str, Any]) -> None:
    """A child's result: one JSON line on stdout."""
    sys.stdout.write("RESULT " + json.dumps(payload) + "\n")


# --- child: Enclave -----------------------------------------------------------------------------

class TimedEmbedder:
    """Enclave's embedder, loaded on first use as `run.py ingest` loads it, recording passage batches."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.name: str = settings.model
        self.seconds = 0.0
        self.texts: list[str] = []

    @functools.cached_property
    def inner(self) -> Any:
        """The real embedder, loaded by the first call that needs it (the ingest's embedding pass)."""
        from assistant.embeddings import SentenceTransformerEmbedder

        return SentenceTransformerEmbedder(self.settings)

    @property
    def dim(self) -> int:
        """The loaded model's width."""
        return int(self.inner.dim)

    def embed_passages(self, texts: list[str], background: bool = False) -> Any:
        """Embed and record how long it took."""
        started = time.perf_counter()
        vectors = self.inner.embed_passages(texts, background)
        self.seconds += time.perf_counter() - started
        self.texts.extend(texts)
        return vectors

    def embed_query(self, text: str) -> Any:
        """Not counted: only passage embedding is ingest work."""
        return self.inner.embed_query(text)

    def embed_queries(self, texts: list[str]) -> Any:
        """Not counted either."""
        return self.inner.embed_queries(texts)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Delegated."""
        return list(self.inner.count_tokens(texts))


def limit_sample(texts: list[str], counts: list[int], n: int) -> list[str]:
    """Up to ``n`` passages of 150 tokens or more, spread evenly over the ingest."""
    long_enough = [t for t, c in zip(texts, counts, strict=True) if c >= 150]
    step = max(1, len(long_enough) // n)
    return long_enough[::step][:n]


class FirstSearch:
    """Ingest progress that, when the last file is reported, runs a keyword search and notes the time."""

    def __init__(self, services: Any, t0: float) -> None:
        self.services = services
        self.t0 = t0
        self.total = self.done = 0
        self.seconds: float | None = None
        self.hits = 0

    def started(self, total_files: int) -> None:
        """The files to wait for."""
        self.total = total_files

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        """A file is keyword-searchable (or failed); after the last, search."""
        self.done += 1
        if self.done == self.total and self.seconds is None:
            corpus = self.services.corpus
            index = corpus.index(corpus.collection_id(self.services.ingest.default_collection))
            self.hits = len(index.search_bm25(PROBE_QUERY, 5))
            self.seconds = time.time() - self.t0

    def doing(self, what: str) -> None:
        """Not needed."""


def child_enclave(folder: Path, data_dir: Path, t0: float) -> None:
    """Ingest with Enclave's service, retrieve once, report."""
    from assistant.offline import enforce_offline

    enforce_offline()
    from sqlalchemy import select

    from assistant.services import build_services
    from assistant.settings import load_settings
    from storage.models import DocumentPage

    settings = load_settings(data_dir=data_dir)
    # Loaded on first use, as `run.py ingest` loads it: keyword search needs no model.
    embedder = TimedEmbedder(settings.embedding)
    services = build_services(settings, embedder=embedder)
    try:
        first = FirstSearch(services, t0)
        report = services.ingest.ingest(folder, progress=first)
        hits = services.retriever.retrieve(PROBE_QUERY).passages
        searchable_s = time.time() - t0
        with services.db.session() as session:
            pages = list(session.scalars(select(DocumentPage.text)))
    finally:
        services.close()
    model_dir = str(embedder.inner.folder)
    counts = input_tokens(model_dir, embedder.texts, embedder.inner.max_tokens)
    (data_dir / "limit_passages.json").write_text(
        json.dumps(limit_sample(embedder.texts, counts, LIMIT_PASSAGES)), encoding="utf-8"
    )
    emit({
        "searchable_s": searchable_s, "first_search_s": first.seconds, "first_search_hits": first.hits,
        "phases": report.phases, "ingest_s": report.seconds, "hits": len(hits),
        "documents": report.documents, "chunks": report.chunks, "failed": len(report.failed),
        "pages": report.pages, "page_rows": len(pages), "source_tokens": source_tokens(model_dir, pages),
        "embedded_chunks": report.embedded_chunks, "embed_s": embedder.seconds,
        "embed_input_tokens": sum(counts), "batch_size": embedder.inner.batch_size,
        "parse_workers": settings.ingest.parsers(), "model_dir": model_dir,
        "max_seq_length": embedder.inner.max_tokens, "torch_threads": torch_threads(),
        "bfloat16": embedder.inner.bfloat16,
    })


# --- child: llama-index starter -----------------------------------------------------------------

def child_starter(folder: Path, model_dir: str, dim: int, t0: float) -> None:
    """The llama-index starter pipeline on the same folder and model, retrieve once, report."""
    import faiss
    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.faiss import FaissVectorStore

    documents = SimpleDirectoryReader(str(folder)).load_data()
    embed_model = HuggingFaceEmbedding(model_name=model_dir)
    storage = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatL2(dim)))
    # The starter sets these through the global Settings; passing the defaults explicitly is the same.
    index = VectorStoreIndex.from_documents(
        documents, storage_context=storage, embed_model=embed_model, transformations=[SentenceSplitter()]
    )
    hits = index.as_retriever(similarity_top_k=5).retrieve(PROBE_QUERY)
    searchable_s = time.time() - t0
    pages = {(d.metadata.get("file_path"), d.metadata.get("page_label")) for d in documents}
    chunk_texts = [n.get_content() for n in index.docstore.docs.values()]
    max_len = int(embed_model._model.max_seq_length or 512)
    emit({
        "searchable_s": searchable_s, "hits": len(hits), "documents": len(documents), "pages": len(pages),
        "source_tokens": source_tokens(model_dir, [d.text for d in documents]), "chunks": len(chunk_texts),
        "embed_input_tokens": sum(input_tokens(model_dir, chunk_texts, max_len)),
        "chunk_size": SentenceSplitter().chunk_size, "embed_batch_size": embed_model.embed_batch_size,
        "torch_threads": torch_threads(),
    })


# --- child: compute limit -----------------------------------------------------------------------

def child_limit(model_dir: str, passages_file: Path, bfloat16: bool) -> None:
    """Tokens/s of SentenceTransformer.encode on fixed passages: best over batch sizes and thread counts.

    ``bfloat16``: measured under the same bfloat16 autocast as Enclave's embedder used, so the limit
    is the one for the arithmetic Enclave ran.
    """
    import torch
    from sentence_transformers import SentenceTransformer

    texts = json.loads(passages_file.read_text(encoding="utf-8"))
    model = SentenceTransformer(model_dir, device="cpu", local_files_only=True)
    tokens = sum(input_tokens(model_dir, texts, int(model.max_seq_length or 512)))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16)
    autocast.__enter__()
    model.encode(texts[:16], batch_size=16)  # warm-up
    rates: dict[str, float] = {}
    for _ in range(2):
        for threads in sorted({1, torch.get_num_threads()}):
            torch.set_num_threads(threads)
            for batch in LIMIT_BATCH_SIZES:
                started = time.perf_counter()
                model.encode(texts, batch_size=batch, normalize_embeddings=True, convert_to_numpy=True)
                key = f"{threads} threads, batch {batch}"
                rates[key] = max(rates.get(key, 0.0), tokens / (time.perf_counter() - started))
    autocast.__exit__(None, None, None)
    emit({"passages": len(texts), "mean_tokens": tokens / max(1, len(texts)), "tokens_per_s_by_setting": rates,
          "bfloat16": bfloat16,
          "tokens_per_s": max(rates.values()), "best_setting": max(rates, key=rates.__getitem__)})


# --- parent -------------------------------------------------------------------------------------

def run_child(args: list[str], label: str) -> tuple[dict[str, Any], float]:
    """Run this script in child mode; returns its result and the wall seconds to exit."""
    env = {**os.environ, **OFFLINE_ENV}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, __file__, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"{label} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        sys.exit(f"{label} printed no result:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return json.loads(lines[-1][len("RESULT "):]), wall


def run_cli_reingest(folder: Path, data_dir: Path) -> dict[str, Any]:
    """The real CLI on an unchanged folder: wall seconds to exit and its own `seconds`."""
    cmd = [sys.executable, "run.py", "ingest", str(folder), "--data-dir", str(data_dir), "--json"]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, **OFFLINE_ENV}, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"unchanged re-ingest failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "ingest_s": report["seconds"], "unchanged": report["unchanged"],
            "added": report["added"], "updated": report["updated"]}


def model_facts(data_dir: Path) -> tuple[str, int]:
    """The embedding model folder Enclave will use with this data dir, and its dimension (from its config)."""
    from assistant.embeddings import resolve_model_dir
    from assistant.settings import load_settings

    folder = resolve_model_dir(load_settings(data_dir=data_dir).embedding.model)
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file():
        return str(folder), int(json.loads(pooling.read_text(encoding="utf-8"))["word_embedding_dimension"])
    return str(folder), int(json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"])


def measure(folder: Path, scratch: Path) -> dict[str, Any]:
    """Run every measurement in turn; returns the raw results."""
    data_dir = scratch / "enclave"
    model_dir, dim = model_facts(data_dir)
    print("1/4 Enclave first ingest ...", flush=True)
    enclave, enclave_wall = run_child(
        ["--child", "enclave", str(folder), "--data-dir", str(data_dir), "--t0", repr(time.time())], "Enclave"
    )
    enclave["process_wall_s"] = enclave_wall
    print("2/4 llama-index starter pipeline ...", flush=True)
    starter, starter_wall = run_child(
        ["--child", "starter", str(folder), "--model-dir", model_dir, "--dim", str(dim), "--t0", repr(time.time())],
        "starter pipeline",
    )
    starter["process_wall_s"] = starter_wall
    print("3/4 embedding model compute limit ...", flush=True)
    limit, _ = run_child(
        ["--child", "limit", "--model-dir", model_dir, "--passages", str(data_dir / "limit_passages.json"),
         "--precision", "bfloat16" if enclave["bfloat16"] else "float32"],
        "compute limit",
    )
    for label, result in (("Enclave", enclave), ("starter", starter)):
        if not result["hits"]:
            print(f"warning: {label}'s probe retrieval found nothing", flush=True)
    print("4/4 Enclave unchanged re-ingest (run.py ingest) ...", flush=True)
    unchanged = run_cli_reingest(folder, data_dir)
    return {"enclave": enclave, "starter": starter, "compute_limit": limit, "unchanged": unchanged}


def figures(raw: dict[str, Any]) -> dict[str, Any]:
    """Rates, ratios and targets from the raw results."""
    enclave, starter, limit, unchanged = raw["enclave"], raw["starter"], raw["compute_limit"], raw["unchanged"]
    achieved = enclave["embed_input_tokens"] / enclave["embed_s"] if enclave["embed_s"] else 0.0
    return {
        "searchable_s": {"enclave": enclave["searchable_s"], "starter": starter["searchable_s"],
                         "ratio": enclave["searchable_s"] / starter["searchable_s"]},
        "first_search_s": {"enclave": enclave["first_search_s"], "starter": starter["searchable_s"],
                           "ratio": enclave["first_search_s"] / starter["searchable_s"]},
        "pages_per_s": {"enclave": enclave["pages"] / enclave["searchable_s"],
                        "starter": starter["pages"] / starter["searchable_s"]},
        "source_tokens_per_s": {"enclave": enclave["source_tokens"] / enclave["searchable_s"],
                                "starter": starter["source_tokens"] / starter["searchable_s"]},
        "unchanged": {"wall_s": unchanged["wall_s"], "ingest_s": unchanged["ingest_s"],
                      "ratio_wall": unchanged["wall_s"] / enclave["searchable_s"],
                      "ratio_ingest": unchanged["ingest_s"] / enclave["ingest_s"]},
        "embedding": {"achieved_tokens_per_s": achieved, "limit_tokens_per_s": limit["tokens_per_s"],
                      "share": achieved / limit["tokens_per_s"], "embed_s": enclave["embed_s"],
                      "embed_share_of_ingest": enclave["embed_s"] / enclave["ingest_s"]},
        "targets": TARGETS,
    }


def verdict(ok: bool) -> str:
    """'met' or 'MISSED'."""
    return "met" if ok else "MISSED"


def print_table(fig: dict[str, Any], raw: dict[str, Any]) -> None:
    """The figures, each beside the starter baseline or the limit, with the target."""
    s, p, t, u, e = (fig[k] for k in ("searchable_s", "pages_per_s", "source_tokens_per_s", "unchanged", "embedding"))
    f = fig["first_search_s"]
    rows = [
        ("time to first search, keyword (s)", f"{f['enclave']:.1f}", f"{f['starter']:.1f}", f"{f['ratio']:.2f}x",
         f"<= 0.25x starter: {verdict(f['ratio'] <= TARGETS['first_search_ratio_max'])}"),
        ("time to full index, dense+keyword (s)", f"{s['enclave']:.1f}", f"{s['starter']:.1f}", f"{s['ratio']:.2f}x",
         f"<= 1.00x starter: {verdict(s['ratio'] <= TARGETS['full_index_ratio_max'])}"),
        ("pages/s", f"{p['enclave']:.1f}", f"{p['starter']:.1f}", f"{p['enclave'] / p['starter']:.2f}x", ""),
        ("source tokens/s", f"{t['enclave']:,.0f}", f"{t['starter']:,.0f}", f"{t['enclave'] / t['starter']:.2f}x", ""),
        ("tokens embedded (model inputs)", f"{raw['enclave']['embed_input_tokens']:,}",
         f"{raw['starter']['embed_input_tokens']:,}",
         f"{raw['enclave']['embed_input_tokens'] / raw['starter']['embed_input_tokens']:.2f}x", ""),
        ("unchanged re-ingest, CLI wall (s)", f"{u['wall_s']:.2f}", "", f"{u['ratio_wall']:.1%} of first",
         f"< 5% of first: {verdict(u['ratio_wall'] < TARGETS['unchanged_ratio_max'])}"),
        ("unchanged re-ingest, ingest() (s)", f"{u['ingest_s']:.3f}", "", f"{u['ratio_ingest']:.2%} of first",
         f"< 5% of first: {verdict(u['ratio_ingest'] < TARGETS['unchanged_ratio_max'])}"),
        ("embedding tokens/s while embedding", f"{e['achieved_tokens_per_s']:,.0f}",
         f"limit {e['limit_tokens_per_s']:,.0f}", f"{e['share']:.0%} of limit",
         f">= 70% of limit: {verdict(e['share'] >= TARGETS['compute_share_min'])}"),
    ]
    header = ("", "Enclave", "starter", "ratio", "target")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        first, *rest = (str(c) for c in row)
        print("  ".join([first.ljust(widths[0]), *(c.rjust(w) for c, w in zip(rest, widths[1:], strict=True))]))
    enclave, starter = raw["enclave"], raw["starter"]
    print(f"\nEnclave: {enclave['documents']} documents, {enclave['pages']} pages, {enclave['chunks']} chunks, "
          f"{enclave['source_tokens']:,} source tokens; embedding took {e['embed_s']:.1f} s "
          f"({e['embed_share_of_ingest']:.0%} of ingest(), batch size {enclave['batch_size']}).")
    print(f"starter: {starter['documents']} documents, {starter['pages']} pages, {starter['chunks']} chunks of "
          f"{starter['chunk_size']} tiktoken tokens, {starter['source_tokens']:,} source tokens; "
          f"{starter['embed_input_tokens']:,} tokens embedded (the model cuts inputs at {enclave['max_seq_length']}).")
    limit = raw["compute_limit"]
    rates = "; ".join(f"{k}: {r:,.0f}" for k, r in limit["tokens_per_s_by_setting"].items())
    arithmetic = "bfloat16 autocast" if limit.get("bfloat16") else "float32"
    print(f"compute limit (tokens/s, {arithmetic} as Enclave ran): {limit['passages']} passages of "
          f"{limit['mean_tokens']:.0f} tokens; {rates}.")
    print(f"torch threads: Enclave {enclave['torch_threads']}, starter {starter['torch_threads']}.")


def main() -> None:
    """Parse arguments; run a child mode or the whole benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_FOLDER, help="Folder of documents.")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON, help="Where to write the figures.")
    for hidden in ("--child", "--data-dir", "--t0", "--model-dir", "--dim", "--passages", "--precision"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child_mode(args)
        return
    folder = args.folder.resolve()
    if not folder.is_dir():
        sys.exit(f"no folder {folder}: pass a folder of documents (default: ../shared/datasets/contoso-hr/docs)")
    command = shlex.join([".venv/bin/python", "bench/ingest.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    with tempfile.TemporaryDirectory(prefix="enclave-bench-ingest-") as scratch:
        raw = measure(folder, Path(scratch))
    load_end = load_average()
    fig = figures(raw)
    print()
    print_table(fig, raw)
    print(f"load average at end: {load_end} ({os.cpu_count()} CPUs; other work on the machine makes figures noisy)")
    write_json(args.json_out, {"command": command, "folder": str(folder), "machine": machine_info(),
                               "load_average": {"start": load_start, "end": load_end}, "figures": fig, "raw": raw})


def run_child_mode(args: argparse.Namespace) -> None:
    """Dispatch to one child measurement."""
    if args.child == "enclave":
        child_enclave(args.folder, Path(args.data_dir), float(args.t0))
    elif args.child == "starter":
        child_starter(args.folder, args.model_dir, int(args.dim), float(args.t0))
    elif args.child == "limit":
        child_limit(args.model_dir, Path(args.passages), args.precision == "bfloat16")
    else:
        sys.exit(f"unknown child mode {args.child!r}")


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write results atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


if __name__ == "__main__":
    main()
