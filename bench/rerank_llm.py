"""A small instruction-tuned model as a second-stage reranker: measured, not wired in (issue 19).

    .venv/bin/python bench/rerank_llm.py FOLDER --data-dir DIR --model NAME=PATH.gguf [--model ...]
        [--every N] [--json-out PATH]

For each answerable question of the QA set (every Nth with ``--every``), Enclave retrieves its top 10
passages as `run.py eval --retrieve-only` does; each model then reads every (question, passage) pair
and is asked "Does the passage answer the question?". The passage's score is the model's probability
of "yes" against "no" on the first answer token, and the 10 passages are reordered by it. Figures are
Enclave's own scorer (`assistant.evaluation.Scorecard`) on the same questions before and after, and
the model's seconds per question (10 pairs; the question comes first in the prompt, so llama.cpp
reuses its evaluated tokens for the 10 passages). One thread for the model (`--threads`).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[0] = str(ROOT)  # bench/ingest.py would shadow the project's `ingest` package

from bench.machine import load_average, machine_info  # noqa: E402

TOP_K = 10
PASSAGE_CHARS = 1200  # about 250 tokens: a 200-token chunk with its file name and heading
INSTRUCTION = "Does the passage answer the question? Answer yes or no."


def retrieve(dataset: Path, data_dir: Path, every: int) -> list[dict[str, Any]]:
    """The questions (every ``every``-th answerable one) with Enclave's top 10 passages."""
    from assistant.evaluation import load_qa
    from assistant.offline import enforce_offline
    from assistant.services import build_services
    from assistant.settings import load_settings
    from storage.documents import searchable_text

    enforce_offline()
    items = [i for i in load_qa(dataset) if i.answerable and i.sources][::every]
    services = build_services(load_settings(data_dir=data_dir))
    try:
        services.retriever.warm_up()
        out = []
        for item in items:
            found = services.retriever.retrieve(item.question, top_k=TOP_K)
            out.append({"item": item, "ms": found.retrieve_ms, "passages": [
                {"file": p.chunk.file, "page": p.chunk.page,
                 "text": searchable_text(p.chunk.file, p.chunk.heading, p.chunk.text)[:PASSAGE_CHARS]}
                for p in found.passages]})
        return out
    finally:
        services.close()


class YesNoJudge:
    """P(yes) of a chat model asked whether a passage answers a question."""

    def __init__(self, path: Path, threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(path), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)
        self.yes = self._token_ids(["yes", "Yes", " yes", " Yes"])
        self.no = self._token_ids(["no", "No", " no", " No"])

    def _token_ids(self, words: list[str]) -> list[int]:
        ids = {self.llm.tokenize(w.encode(), add_bos=False, special=False)[0] for w in words}
        return sorted(ids)

    def prompt(self, question: str, passage: str) -> list[int]:
        """The chat prompt, question first so that the passages share its evaluated prefix.

        ChatML for models that have its tokens (SmolLM2, Qwen2.5), else Gemma's turns.
        """
        user = f"Question: {question}\n\nPassage: {passage}\n\n{INSTRUCTION}"
        if len(self.llm.tokenize(b"<|im_start|>", add_bos=False, special=True)) == 1:
            text = f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"
        else:
            text = f"<bos><start_of_turn>user\n{user}<end_of_turn>\n<start_of_turn>model\n"
        return self.llm.tokenize(text.encode(), add_bos=False, special=True)

    def score(self, question: str, passage: str) -> float:
        """log P(yes) - log P(no) over the first answer token."""
        import numpy as np

        self._evaluate(self.prompt(question, passage)[-1000:])
        # Without logits_all (a vocabulary-sized row per token) llama-cpp-python keeps no scores: read the context's.
        logits = np.ctypeslib.as_array(self.llm._ctx.get_logits(), shape=(self.llm.n_vocab(),))
        top = max(float(logits[i]) for i in self.yes + self.no)
        yes = math.log(sum(math.exp(float(logits[i]) - top) for i in self.yes))
        no = math.log(sum(math.exp(float(logits[i]) - top) for i in self.no))
        return yes - no

    def _evaluate(self, tokens: list[int]) -> None:
        """Evaluate only the tokens after the prefix shared with the previous prompt."""
        shared = 0
        previous = self.llm.input_ids[: self.llm.n_tokens].tolist()
        for a, b in zip(previous, tokens[:-1], strict=False):
            if a != b:
                break
            shared += 1
        self.llm.n_tokens = shared
        self.llm.eval(tokens[shared:])


def figures(rows: list[dict[str, Any]], order: str | None) -> dict[str, Any]:
    """Enclave's scorer over the rankings (reordered by ``order``'s scores when given)."""
    from assistant.evaluation import Record, Scorecard

    records = []
    for row in rows:
        passages = row["passages"]
        if order is not None:
            passages = sorted(passages, key=lambda p: -p["scores"][order])
        records.append(Record(row["item"], [(p["file"], p["page"]) for p in passages], row["ms"]))
    report = Scorecard(records, retrieve_only=True).report()
    return {k: round(v, 4) for k, v in report["retrieval"].items() if v is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model", action="append", default=[], help="NAME=PATH to a GGUF chat model")
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args()
    rows = retrieve(args.folder, args.data_dir, args.every)
    result: dict[str, Any] = {"set": args.folder.name, "questions": len(rows), "every": args.every,
                              "top_k": TOP_K, "machine": machine_info(), "enclave": figures(rows, None),
                              "models": {}}
    print(json.dumps({"enclave": result["enclave"], "questions": len(rows)}), flush=True)
    for spec in args.model:
        name, path = spec.split("=", 1)
        judge = YesNoJudge(Path(path), args.threads)
        started, cpu = time.perf_counter(), time.process_time()
        for n, row in enumerate(rows, 1):
            for p in row["passages"]:
                p.setdefault("scores", {})[name] = judge.score(row["item"].question, p["text"])
            elapsed = time.perf_counter() - started
            print(f"{name}: {n}/{len(rows)} questions, {elapsed:.0f} s", file=sys.stderr, flush=True)
        seconds = (time.perf_counter() - started) / max(len(rows), 1)
        cpu_seconds = (time.process_time() - cpu) / max(len(rows), 1)  # what a shared machine's load does not change
        result["models"][name] = {"path": path, **figures(rows, name), "seconds_per_question": round(seconds, 2),
                                  "cpu_seconds_per_question": round(cpu_seconds, 2),
                                  "load_average": load_average()}
        print(json.dumps({name: result["models"][name]}), flush=True)
        del judge
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
