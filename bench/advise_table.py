"""Merge advise_subset.py runs into one advice on the questions every model finished: a Markdown table, JSON, PNG.

Usage: python bench/advise_table.py --data-dir DATA_DIR --png OUT.png --json OUT.json RUN_DIR=MODEL_FILE_NAME ...
(MODEL_FILE_NAME as the catalogue lists it, or 'packaged' for the packaged Gemma 3 270M).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from assistant.advice import Advice, ModelReport, QuestionResult, choose, draw  # noqa: E402
from assistant.advisor import DEFAULT_TOLERANCE, RESULTS  # noqa: E402
from assistant.models.catalogue import list_models  # noqa: E402
from assistant.settings import load_settings  # noqa: E402


def figure(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def row(r: ModelReport, chosen: ModelReport | None) -> str:
    first = [None if v is None else v / 1000 for v in (r.first_token_p50_ms, r.first_token_p95_ms)]
    useful = [None if v is None else v / 1000 for v in (r.first_useful_p50_ms, r.first_useful_p95_ms)]
    size = r.size_bytes / 2**20 if r.size_bytes else None
    return (f"| {r.model.name}{' (advised)' if r is chosen else ''} | {figure(size, 0)} | {figure(r.token_f1)} | "
            f"{figure(r.containment)} | {figure(r.citation_precision)} | {figure(r.refusal_accuracy)} / "
            f"{figure(r.false_refusal_rate)} | {figure(r.quality, 3)} | "
            f"{figure(useful[0])} / {figure(useful[1])} | {figure(first[0], 1)} / {figure(first[1], 1)} | "
            f"{figure(r.tokens_per_s, 1)} | {figure(r.peak_memory_mb, 0)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="RUN_DIR=MODEL_FILE_NAME")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--png", type=Path, required=True)
    parser.add_argument("--json", type=Path, required=True)
    args = parser.parse_args()
    catalogue = list_models(load_settings(data_dir=args.data_dir), timeout_s=0.5)
    entries, results = [], {}
    for run in args.runs:
        folder, name = run.split("=", 1)
        text = (Path(folder) / RESULTS).read_text()
        lines = [QuestionResult.from_json(json.loads(line)) for line in text.splitlines()]
        measured = {r.model for r in lines}  # the model the run measured: a file of several sources is one of them
        entry = next((m for m in catalogue.models if m.key in measured), None) or (
            next(m for m in catalogue.models if m.source == "packaged" and "gemma" in m.name)
            if name == "packaged" else catalogue.find(name))
        assert entry is not None, f"{name} is not in the catalogue of {args.data_dir}"
        entries.append(entry)
        for result in lines:
            results[(result.model, result.question_id)] = result
    common = sorted(set.intersection(*({q for (m, q) in results if m == e.key} for e in entries)))
    reports = [ModelReport.of(e, [results[(e.key, q)] for q in common]) for e in entries]
    chosen, reason = choose(reports, DEFAULT_TOLERANCE)
    unanswerable = sum(1 for q in common if not results[(entries[0].key, q)].answerable)
    name = f"contoso-hr, {len(common) - unanswerable} answerable + {unanswerable} unanswerable"
    advice = Advice(name, len(common), DEFAULT_TOLERANCE, reports, chosen, reason)
    advice.plot = str(draw(advice, args.png))
    args.json.write_text(json.dumps({**advice.to_json(), "question_ids": common}, indent=1) + "\n")
    print("| model (GGUF) | size MiB | token F1 | containment | citation precision | refusal acc. / false | quality "
          "| first useful p50 / p95 s | first token p50 / p95 s | tokens/s | peak MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in reports:
        print(row(r, chosen))
    print(f"\n{reason}")


if __name__ == "__main__":
    main()
