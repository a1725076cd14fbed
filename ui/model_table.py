"""The catalogue and the advice as rows of text, the same in `run.py models list` and on the admin Models page."""

from __future__ import annotations

from assistant.advice import Advice
from assistant.models.entry import ModelEntry

MODEL_COLUMNS = ["name", "family", "parameters", "quantisation", "size", "sha256", "context", "kind", "licence",
                 "source", "answers now"]
ADVICE_COLUMNS = ["model", "size MiB", "quality", "F1", "containment", "citation precision", "refusal accuracy",
                  "false refusals", "first token p50 s", "p95 s", "tokens/s", "peak MiB", "advised"]


def count(value: int | None) -> str:
    """1_543_000_000 -> 1.5B, as model cards say it."""
    if value is None:
        return ""
    for scale, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "K")):
        if value >= scale:
            return f"{value / scale:.1f}{suffix}"
    return str(value)


def kind(entry: ModelEntry) -> str:
    """Instruction-tuned (it has a chat template), a base model, or "" where the source does not say."""
    if entry.has_chat_template is None:
        return ""
    return "chat template" if entry.has_chat_template else "base"


def model_row(entry: ModelEntry, answering: bool, sha256_chars: int = 64) -> dict[str, str]:
    """One catalogue model, by MODEL_COLUMNS."""
    return {
        "name": entry.name, "family": entry.family or "", "parameters": count(entry.parameters),
        "quantisation": entry.quantisation or "",
        "size": f"{entry.size_bytes / 2**20:.0f} MiB" if entry.size_bytes else "",
        "sha256": (entry.sha256 or "")[:sha256_chars], "context": str(entry.context_length or ""),
        "kind": kind(entry), "licence": entry.licence or "",
        "source": entry.source + (f" ({entry.package})" if entry.package else ""),
        "answers now": "yes" if answering else "",
    }


def _figure(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def advice_rows(advice: Advice) -> list[dict[str, str]]:
    """Every measured model's figures, by ADVICE_COLUMNS."""
    rows = []
    for r in advice.models:
        p50, p95 = (None if v is None else v / 1000 for v in (r.first_token_p50_ms, r.first_token_p95_ms))
        rows.append({
            "model": r.model.name, "size MiB": _figure(r.size_bytes / 2**20 if r.size_bytes else None, 0),
            "quality": _figure(r.quality, 3), "F1": _figure(r.token_f1), "containment": _figure(r.containment),
            "citation precision": _figure(r.citation_precision), "refusal accuracy": _figure(r.refusal_accuracy),
            "false refusals": _figure(r.false_refusal_rate), "first token p50 s": _figure(p50),
            "p95 s": _figure(p95), "tokens/s": _figure(r.tokens_per_s, 1), "peak MiB": _figure(r.peak_memory_mb, 0),
            "advised": "yes" if r is advice.chosen else "",
        })
    return rows
