"""A source at file-share scale: first sync, an unchanged re-sync, 100 changed/renamed/deleted files, and
retrieval latency for concurrent users while the first sync runs.

    .venv/bin/python bench/sources.py [--files 50000] [--users 10] [--json-out PATH]

A tree of small generated files (text, Markdown, HTML, and a share of PDFs and DOCX files, in
nested folders) is registered as a source and synced in this process, as `run.py sources sync`
does. Printed: the first sync's files/s and pages/s and the peak memory (this process and its
parser processes); the unchanged re-sync's time and how many chunks it embedded (target: none,
and under 60 s for 50,000 files on a 2-core machine); the re-sync after 100 files are changed,
100 renamed and 100 deleted, with its counts (target: exactly those); and retrieve-only p95 of
``--users`` threads asking back to back, on a small collection ingested first, for ``--load-s``
seconds while the first sync runs (from 2 s into it, past the scan), against the same with no
sync running (the ratio, in the same run). The users stop after that window: ten users asking
without pause for a whole 50,000-file sync would measure the sync's yielding to questions, not
its throughput, which the first-sync figures are for.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shlex
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)

from bench.machine import load_average, machine_info  # noqa: E402
from bench.query import latency_stats  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "sources.json"
WORDS = ["policy", "staff", "leave", "travel", "expense", "badge", "parking", "canteen", "laptop", "printer",
         "visitor", "contract", "budget", "meeting", "report", "training", "safety", "holiday", "payroll",
         "benefit", "office", "project", "review", "audit", "supplier"]
QUESTIONS = ["How is parking handled for staff?", "Who approves travel expenses?", "What is the laptop policy?",
             "When is payroll run?", "How are visitors signed in?", "What does the safety training cover?"]
CHANGED = 100


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=50_000, help="Files in the generated tree.")
    parser.add_argument("--users", type=int, default=10, help="Concurrent retrieve-only users.")
    parser.add_argument("--load-s", type=float, default=60.0,
                        help="Seconds the users ask, during the first sync and with no sync running.")
    parser.add_argument("--pdf-share", type=float, default=0.02, help="Share of the files that are PDFs.")
    parser.add_argument("--docx-share", type=float, default=0.02, help="Share of the files that are DOCX.")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    return parser.parse_args()


def _text(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(40 + n % 60)).capitalize() + "."


def write_tree(folder: Path, count: int, pdf_share: float, docx_share: float, seed: int = 7) -> dict[str, int]:
    """Write ``count`` small files in nested folders; returns how many of each kind."""
    from docx import Document as Docx
    from fpdf import FPDF

    rng = random.Random(seed)
    kinds: dict[str, int] = {}
    for n in range(count):
        folder_of = folder / f"dept-{n % 20:02d}" / f"team-{n % 7}" / f"year-{2015 + n % 10}"
        folder_of.mkdir(parents=True, exist_ok=True)
        draw, body = rng.random(), _text(rng, n)
        if draw < pdf_share:
            pdf = FPDF()
            for page in range(2):
                pdf.add_page()
                pdf.set_font("helvetica", size=11)
                pdf.multi_cell(0, 6, f"Memo {n} page {page + 1}. {body}")
            pdf.output(str(folder_of / f"memo-{n}.pdf"))
            kind = "pdf"
        elif draw < pdf_share + docx_share:
            doc = Docx()
            doc.add_heading(f"Memo {n}", 1)
            doc.add_paragraph(body)
            doc.save(str(folder_of / f"memo-{n}.docx"))
            kind = "docx"
        else:
            kind = ("txt", "md", "html")[n % 3]
            text = {"txt": body, "md": f"# Memo {n}\n\n{body}\n",
                    "html": f"<html><head><title>Memo {n}</title></head><body><p>{body}</p></body></html>"}[kind]
            (folder_of / f"memo-{n}.{kind}").write_text(text, "utf-8")
        kinds[kind] = kinds.get(kind, 0) + 1
    return kinds


def retrieve_p95(services: Any, users: int, seconds: float, stop: threading.Event | None = None) -> dict[str, Any]:
    """Retrieve-only latency of ``users`` threads asking in turn for ``seconds`` (or until ``stop``)."""
    deadline = time.monotonic() + seconds
    samples: list[float] = []
    lock = threading.Lock()

    def user(k: int) -> None:
        n = k
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            started = time.perf_counter()
            services.retriever.retrieve(QUESTIONS[n % len(QUESTIONS)], ["base"])
            with lock:
                samples.append((time.perf_counter() - started) * 1000)
            n += 1

    with ThreadPoolExecutor(users) as pool:
        list(pool.map(user, range(users)))
    return {k: round(v, 1) for k, v in latency_stats(samples).items()} if samples else {"n": 0}


def peak_mb() -> dict[str, float]:
    """Peak resident memory of this process and of its largest finished child (parser processes), in MB."""
    return {"process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}


def first_sync(services: Any, share: Path, users: int, load_s: float) -> dict[str, Any]:
    """Register and sync the tree, measuring retrieval of concurrent users while it runs."""
    from assistant.audit import SYSTEM

    sources = services.web.sources
    sources.add(SYSTEM, "bench", str(share), "bench", schedule="every 1d", max_removal_share=0.5)
    result: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        started = time.perf_counter()
        result["run"] = sources.run_here(SYSTEM, "bench")
        result["seconds"] = time.perf_counter() - started
        done.set()

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(2.0)  # past the scan, into parsing and embedding
    result["retrieve_during_sync"] = retrieve_p95(services, users, load_s, stop=done)
    result["sync_running_after_load"] = not done.is_set()  # the whole window fell inside the sync
    worker.join()
    return result


def resync(services: Any) -> tuple[Any, float]:
    from assistant.audit import SYSTEM

    started = time.perf_counter()
    run = services.web.sources.run_here(SYSTEM, "bench")
    return run, time.perf_counter() - started


def churn(share: Path, seed: int = 11) -> None:
    """Change, rename and delete ``CHANGED`` text files each (never the same file twice)."""
    rng = random.Random(seed)
    files = sorted(p for p in share.rglob("*") if p.suffix in (".txt", ".md"))
    picked = rng.sample(files, 3 * CHANGED)
    for path in picked[:CHANGED]:
        path.write_text(path.read_text("utf-8") + "\n\nA new paragraph about the canteen opening hours.\n", "utf-8")
    for path in picked[CHANGED:2 * CHANGED]:
        path.rename(path.with_name("renamed-" + path.name))
    for path in picked[2 * CHANGED:]:
        path.unlink()


def main() -> None:
    args = parse_args()
    command = shlex.join([".venv/bin/python", "bench/sources.py", *sys.argv[1:]])
    load_start = load_average()
    print(f"{command}\nload average at start: {load_start}", flush=True)
    from assistant.services import build_services
    from assistant.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="enclave-sources-"))
    try:
        share, base = work / "share", work / "base"
        kinds = write_tree(share, args.files, args.pdf_share, args.docx_share)
        write_tree(base, 300, 0.0, 0.0, seed=3)
        print(f"wrote {args.files} files: {kinds}", flush=True)
        settings = load_settings(data_dir=work / "data", jobs={"in_process_worker": False})
        services = build_services(settings)
        try:
            services.ingest.ingest(base, "base")
            for question in QUESTIONS:  # models loaded and indexes opened before anything is timed
                services.retriever.retrieve(question, ["base"])
            idle = retrieve_p95(services, args.users, args.load_s)
            first = first_sync(services, share, args.users, args.load_s)
            pages = sum(d.page_count for d in services.web.library.documents(_system(), "bench"))
            peak = peak_mb()
            unchanged, unchanged_s = resync(services)
            churn(share)
            churned, churned_s = resync(services)
        finally:
            services.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    during = first["retrieve_during_sync"]
    rows = {
        "files": args.files, "kinds": kinds, "users": args.users,
        "first_sync": {"seconds": round(first["seconds"], 1), "files_per_s": round(args.files / first["seconds"], 1),
                       "pages_per_s": round(pages / first["seconds"], 1), "pages": pages,
                       "counts": dict(first["run"].counts), "phases": dict(first["run"].phases), "peak_mb": peak},
        "unchanged_resync": {"seconds": round(unchanged_s, 1), "counts": dict(unchanged.counts),
                             "phases": dict(unchanged.phases)},
        "churn_resync": {"seconds": round(churned_s, 1), "counts": dict(churned.counts),
                         "phases": dict(churned.phases)},
        "retrieve_ms": {"idle": idle, "during_first_sync": during, "load_s": args.load_s,
                        "window_inside_sync": first["sync_running_after_load"],
                        "p95_ratio": round(during["p95"] / idle["p95"], 2) if during.get("n") else None},
    }
    expected = {"updated": CHANGED, "renamed": CHANGED, "removed": CHANGED, "added": 0}
    rows["targets"] = {
        "unchanged_resync_under_60s": unchanged_s < 60 * args.files / 50_000,
        "unchanged_resync_embeds_nothing": unchanged.counts["added"] + unchanged.counts["updated"] == 0,
        "churn_counts_exact": all(churned.counts[k] == v for k, v in expected.items()),
    }
    payload = {"command": command, "machine": machine_info(),
               "load_average": {"start": load_start, "end": load_average()}, **rows}
    print(json.dumps(rows, indent=2), flush=True)
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"wrote {args.json_out}\nrerun: {command}", flush=True)


def _system() -> Any:
    from assistant.audit import SYSTEM

    return SYSTEM


if __name__ == "__main__":
    main()
