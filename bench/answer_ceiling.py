"""How far answers built from the retrieved passages alone can go: the ceiling for issue 15's answer targets.

    .venv/bin/python bench/answer_ceiling.py DATASET_DIR --data-dir DATA_DIR [--json-out PATH]

DATA_DIR holds DATASET_DIR's documents already ingested (`run.py eval DATASET_DIR --data-dir
DATA_DIR --retrieve-only` makes it). Every answerable question is retrieved as the app does
(the same passages the model reads), and scored as `run.py eval` scores answers (token F1 and
containment against the reference answer; citation precision: cited passages on the gold page):

- ``quotes``: what the app shows with no model at all, the evidence (`assistant.evidence`), the
  baseline every model answer should beat;
- ``oracle``: the best answer that only copies passage sentences, chosen with the reference
  answer in hand (up to four of the top passages' sentences, the eight that cover most of the
  reference, the combination best on both F1/0.50 and containment/0.60): no selection rule can
  beat it, so where it misses a target, only a model that rewrites the passages can reach it;
- ``cite first``, ``cite best-supported`` and ``cite anchored``: citation precision when the answer
  cites only the first passage, each reference sentence's best-supporting passage (cosine), or
  the passages the app's attribution gives them (`answer.attribution_anchor_margin`: the passage
  that supports the answer best together, unless another supports a sentence clearly better):
  what citation assignment can give a model that answers perfectly.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # the project root, not bench/, so `ingest` is the project's package

from assistant.citations import attribute_sentences  # noqa: E402
from assistant.evaluation import QAItem, containment, load_qa, token_f1  # noqa: E402
from assistant.evidence import passage_sentences, quote_evidence  # noqa: E402
from assistant.retrieval import Passage  # noqa: E402
from assistant.services import build_services  # noqa: E402
from assistant.settings import load_settings  # noqa: E402
from bench.machine import machine_info  # noqa: E402

DEFAULT_JSON = ROOT / "bench" / "results" / "answer-ceiling.json"


def on_gold_page(item: QAItem, passage: Passage) -> bool:
    """Whether the passage is on a page (or in a file, where no page is known) the question cites."""
    return any(passage.chunk.file == f and (p is None or passage.chunk.page == p) for f, p in item.sources)


def oracle(item: QAItem, passages: list[Passage]) -> str:
    """The best copy-only answer, chosen knowing the reference (see the module docstring)."""
    reference = item.answer or ""
    sentences = [s for p in passages[:5] for s in passage_sentences(p.chunk.text)]
    top = sorted(sentences, key=lambda s: -containment(s, reference))[:8]
    answers = [" ".join(c) for k in range(1, 5) for c in itertools.combinations(top, k)] or [""]
    return max(answers, key=lambda a: min(token_f1(a, reference) / 0.5, containment(a, reference) / 0.6))


def supported_by(item: QAItem, passages: list[Passage], embed: Any, anchor_margin: float) -> set[int]:
    """The passages (indexes) attribution gives the reference answer's sentences, as the app attributes them."""
    texts = [p.chunk.text for p in passages]
    found = attribute_sentences(item.answer or "", texts, embed, threshold=-1.0, anchor_margin=anchor_margin)
    return {n - 1 for s in found for n in s.passages}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--json-out", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args()
    settings = load_settings(data_dir=args.data_dir)
    services = build_services(settings)
    items = [i for i in load_qa(args.dataset) if i.answerable and i.answer]
    figures: dict[str, list[float]] = {k: [] for k in ("quotes_f1", "quotes_containment", "oracle_f1",
                                                       "oracle_containment")}
    cited: dict[str, list[bool]] = {"quotes": [], "cite first": [], "cite best-supported": [], "cite anchored": []}
    margin = settings.answer.attribution_anchor_margin
    started = time.perf_counter()
    try:
        for item in items:
            passages = services.retriever.retrieve(item.question, None, settings.retrieval.top_k).passages
            if not passages:
                continue
            query = item.question
            quotes = quote_evidence(query, passages)
            shown = " ".join(q.text for q in quotes)
            figures["quotes_f1"].append(token_f1(shown, item.answer or ""))
            figures["quotes_containment"].append(containment(shown, item.answer or ""))
            cited["quotes"] += [on_gold_page(item, passages[n - 1]) for n in dict.fromkeys(q.n for q in quotes)]
            best = oracle(item, passages)
            figures["oracle_f1"].append(token_f1(best, item.answer or ""))
            figures["oracle_containment"].append(containment(best, item.answer or ""))
            cited["cite first"].append(on_gold_page(item, passages[0]))
            embed = services.corpus.embedder.embed_passages
            for name, anchor in (("cite best-supported", 0.0), ("cite anchored", margin)):
                cited[name] += [on_gold_page(item, passages[i]) for i in supported_by(item, passages, embed, anchor)]
    finally:
        services.close()
    result = {
        "dataset": args.dataset.name, "questions": len(figures["quotes_f1"]),
        **{k: round(float(np.mean(v)), 3) for k, v in figures.items()},
        "citation_precision": {k: round(float(np.mean(v)), 3) for k, v in cited.items() if v},
        "seconds": round(time.perf_counter() - started, 1), "machine": machine_info(),
    }
    print(f"{result['dataset']}: {result['questions']} answerable questions")
    print(f"  copy-only answers   F1 {result['quotes_f1']:.3f}  containment {result['quotes_containment']:.3f}"
          f"  (the app's evidence, no model)")
    print(f"  oracle copy-only    F1 {result['oracle_f1']:.3f}  containment {result['oracle_containment']:.3f}"
          f"  (ratio to evidence: {result['oracle_f1'] / max(result['quotes_f1'], 1e-9):.2f}x F1)")
    for name, value in result["citation_precision"].items():
        print(f"  citation precision, {name}: {value:.3f}")
    args.json_out.parent.mkdir(parents=True, exist_ok=True)
    args.json_out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
