"""Which questions labelled unanswerable does Enclave answer, and what did it find for them?

    .venv/bin/python bench/unanswerable.py DATASET_DIR --data-dir DATA_DIR [--passages 3]
                                           [--json-out PATH]

DATA_DIR holds DATASET_DIR's documents already ingested (`run.py eval DATASET_DIR --data-dir
DATA_DIR --retrieve-only` makes it). Every question of the set is retrieved and judged as the
app does before generation (`assistant.answerability.judge`). For each question labelled
unanswerable that is not refused there, the top ``--passages`` passages are listed with
their file, page, heading and the sentence closest to the question (cosine of the app's
embedding model), so that a reader can check whether the documents answer it after all:
question sets written with a language model label some answered questions unanswerable.

Printed: refusals before generation of unanswerable and of answerable questions, and the
best dense score of the unanswerable questions left for the model beside the answerable
questions' (the baseline, same run).
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from bench.machine import load_average, machine_info  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "unanswerable.json"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="A QA set folder (docs/ and qa.jsonl).")
    parser.add_argument("--data-dir", type=Path, required=True, help="A data dir holding the set's documents.")
    parser.add_argument("--passages", type=int, default=3, help="Passages listed per question.")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    return parser.parse_args()


def closest_sentence(services: Any, question: str, text: str) -> str:
    """The sentence (or list item) of ``text`` nearest the question in the embedding space."""
    from assistant.citations import pieces

    sentences = pieces(text) or [" ".join(text.split())]
    embedder = services.corpus.embedder
    scores = embedder.embed_passages(sentences) @ embedder.embed_query(question)
    return sentences[int(np.argmax(scores))]


def main() -> None:
    args = parse_args()
    from assistant.offline import enforce_offline

    enforce_offline()
    from assistant.answerability import judge
    from assistant.evaluation import load_qa
    from assistant.retrieval import knows_term
    from assistant.services import build_services
    from assistant.settings import load_settings

    started, load_start = time.perf_counter(), load_average()
    settings = load_settings(data_dir=args.data_dir)
    services = build_services(settings)
    known = knows_term(services.retriever.indexes(None))
    refused = {True: 0, False: 0}
    best_dense: dict[bool, list[float]] = {True: [], False: []}
    rows: list[dict[str, Any]] = []
    items = load_qa(args.dataset)
    for item in items:
        retrieval = services.retriever.retrieve(item.question)
        verdict = judge(retrieval.query, retrieval.passages, known, settings.answer)
        refused[item.answerable] += verdict.refuse
        if verdict.refuse:
            continue
        best_dense[item.answerable].append(verdict.top_dense)
        if item.answerable:
            continue
        rows.append({
            "id": item.id, "question": item.question, "query": retrieval.query,
            "best_dense": round(verdict.top_dense, 3),
            "passages": [
                {"file": p.chunk.file, "page": p.chunk.page, "heading": p.chunk.heading,
                 "closest_sentence": closest_sentence(services, item.question, p.chunk.text)}
                for p in retrieval.passages[: args.passages]
            ],
        })
    services.close()
    unanswerable = sum(1 for item in items if not item.answerable)
    answerable = len(items) - unanswerable
    summary = {
        "questions": len(items),
        "unanswerable_refused_before_generation": f"{refused[False]}/{unanswerable}",
        "answerable_refused_before_generation": f"{refused[True]}/{answerable}",
        "unanswerable_left_for_the_model": len(rows),
        "best_dense_median": {
            "unanswerable_left": round(statistics.median(best_dense[False]), 3) if best_dense[False] else None,
            "answerable_baseline": round(statistics.median(best_dense[True]), 3) if best_dense[True] else None,
        },
        "seconds": round(time.perf_counter() - started, 1),
    }
    for row in rows:
        print(f"\n{row['id']}  best dense {row['best_dense']:.2f}  {row['question']}")
        for p in row["passages"]:
            print(f"   {p['file']} p.{p['page']} [{p['heading']}]: {p['closest_sentence'][:160]}")
    print("\n" + json.dumps(summary, indent=1))
    command = " ".join(shlex.quote(a) for a in [".venv/bin/python", "bench/unanswerable.py", *sys.argv[1:]])
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps({
        "command": command, "machine": machine_info(), "load_average": {"start": load_start, "end": load_average()},
        "summary": summary, "rows": rows,
    }, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
