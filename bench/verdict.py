"""Does the embedded model's own yes/no verdict tell "related" from "answered"?

    .venv/bin/python bench/verdict.py DATASET_DIR --data-dir DATA_DIR [--every 7] [--passages 3]
                                      [--json-out PATH]

DATA_DIR holds DATASET_DIR's documents already ingested (`run.py eval DATASET_DIR --data-dir
DATA_DIR --retrieve-only` makes it). The questions: every unanswerable one, plus every
``--every``-th answerable one. Each question is retrieved as the app does; those the app
already refuses without a model (best dense score under `answer.refuse_below_dense`) are
counted and left out. For each remaining question the embedded GGUF model (``--model``, else
the one `generation.embedded.gguf_path` names, else the install's default) reads each of the
top ``--passages`` passages with the question and "Does the passage answer the question? Reply
Yes or No.", as one user turn in its own chat template (a base model without a template gets
Gemma's turn markers); the verdict is the log-odds of "Yes" over "No" of its next token, the
best over the passages.

Printed: the area under the ROC curve (0.5 is chance) for telling answerable from
unanswerable, and how many unanswerable questions the best threshold that refuses no
answerable question would refuse. The baseline, in the same run, is the best dense score
(the signal the app already uses) over the same questions.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from bench.machine import load_average, machine_info  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "verdict.json"
ASK = "Passage:\n{passage}\n\nQuestion: {question}\nDoes the passage answer the question? Reply Yes or No."
BASE_TURN = "<start_of_turn>user\n{ask}<end_of_turn>\n<start_of_turn>model\n"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path, help="A QA set folder (docs/ and qa.jsonl).")
    parser.add_argument("--data-dir", type=Path, required=True, help="A data dir holding the set's documents.")
    parser.add_argument("--every", type=int, default=7, help="Take every n-th answerable question.")
    parser.add_argument("--passages", type=int, default=3, help="Passages the model judges per question.")
    parser.add_argument("--model", type=Path, help="A GGUF file to judge with (default: the install's model).")
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    return parser.parse_args()


def auc(positives: list[float], negatives: list[float]) -> float | None:
    """Probability that an answerable question scores above an unanswerable one (ties count half)."""
    if not positives or not negatives:
        return None
    pairs = [(p > n) + 0.5 * (p == n) for p in positives for n in negatives]
    return round(float(sum(pairs) / len(pairs)), 3)


def refusable(answerable: list[float], unanswerable: list[float]) -> int:
    """Unanswerable questions refused by the highest threshold that refuses no answerable one."""
    floor = min(answerable, default=float("inf"))
    return sum(1 for score in unanswerable if score < floor)


class YesNoJudge:
    """The log-odds of "Yes" over "No" as the model's next token after the question and a passage."""

    def __init__(self, gguf: Path) -> None:
        from llama_cpp import Llama

        from assistant.llm.embedded import read_speaking

        self.llm = Llama(model_path=str(gguf), n_ctx=2048, n_threads=2, logits_all=True, verbose=False)
        self.formatter = read_speaking(gguf, self.llm).formatter
        self.yes = self._first_tokens(["Yes", " Yes", "yes"])
        self.no = self._first_tokens(["No", " No", "no"])

    def _first_tokens(self, words: list[str]) -> list[int]:
        return sorted({self.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words})

    def score(self, question: str, passage: str) -> float:
        ask = ASK.format(passage=passage[:1500], question=question)
        if self.formatter is None:
            prompt = BASE_TURN.format(ask=ask)
        else:
            prompt = self.formatter(messages=[{"role": "user", "content": ask}]).prompt
        self.llm.reset()
        self.llm.eval(self.llm.tokenize(prompt.encode(), add_bos=self.formatter is None, special=True))
        logits = np.asarray(self.llm.scores[self.llm.n_tokens - 1], dtype=np.float64)
        return float(np.logaddexp.reduce(logits[self.yes]) - np.logaddexp.reduce(logits[self.no]))


def main() -> None:
    args = parse_args()
    from assistant.offline import enforce_offline

    enforce_offline()
    from assistant.default_model import default_gguf
    from assistant.evaluation import load_qa
    from assistant.llm.embedded import packaged_gguf
    from assistant.services import build_services
    from assistant.settings import load_settings

    command = shlex.join([".venv/bin/python", "bench/verdict.py", *sys.argv[1:]])
    load_start = load_average()
    settings = load_settings(data_dir=args.data_dir)
    services = build_services(settings)
    items = load_qa(args.dataset)
    chosen = [i for i in items if not i.answerable] + [i for i in items if i.answerable][:: args.every]
    gguf_setting = settings.generation.embedded.gguf_path
    configured = args.model or (Path(gguf_setting).expanduser() if gguf_setting else None)
    gguf = configured or default_gguf() or packaged_gguf(settings.data_dir / "models")
    judge = YesNoJudge(gguf)
    threshold = settings.answer.refuse_below_dense
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for item in chosen:
        passages = services.retriever.retrieve(item.question).passages
        dense = max((p.dense for p in passages if p.dense is not None), default=0.0)
        row: dict[str, Any] = {"id": item.id, "answerable": item.answerable, "dense": round(dense, 4)}
        if dense >= threshold:
            row["verdict"] = round(max(judge.score(item.question, p.chunk.text) for p in passages[: args.passages]), 4)
        rows.append(row)
    services.close()
    seconds = time.perf_counter() - started
    left = [r for r in rows if "verdict" in r]
    figures = {}
    for signal in ("verdict", "dense"):
        good = [r[signal] for r in left if r["answerable"]]
        bad = [r[signal] for r in left if not r["answerable"]]
        figures[signal] = {"auc": auc(good, bad), "unanswerable_refusable_with_no_false_refusal": refusable(good, bad)}
    summary = {
        "questions": len(rows), "unanswerable": sum(not r["answerable"] for r in rows),
        "refused_without_model": sum(not r["answerable"] and "verdict" not in r for r in rows),
        "answerable_refused_without_model": sum(r["answerable"] and "verdict" not in r for r in rows),
        "left_for_the_model": {"answerable": sum(r["answerable"] for r in left),
                               "unanswerable": sum(not r["answerable"] for r in left)},
        "model_verdict": figures["verdict"], "baseline_best_dense_score": figures["dense"],
        "seconds": round(seconds, 1),
    }
    print(f"{command}\n{json.dumps(summary, indent=2)}", flush=True)
    payload = {"command": command, "machine": machine_info(),
               "load_average": {"start": load_start, "end": load_average()}, "model": gguf.name,
               "summary": summary, "rows": rows}
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"wrote {args.json_out}", flush=True)


if __name__ == "__main__":
    main()
