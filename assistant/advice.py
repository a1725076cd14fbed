"""The model-size advisor's results: per-question records, per-model figures, the choice and its plot."""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from assistant.evaluation import _pct
from assistant.models.entry import ModelEntry

ADVICE = "advice.json"
PLOT = "advice.png"
ADVICE_FOLDER = "advice"
"""DATA_DIR/advice/<QA set>/ holds each QA set's advice unless `advise --out` says otherwise; the Models page
shows the newest."""


def advice_dir(data_dir: Path, dataset: Path) -> Path:
    """Where `advise` writes for a QA set unless told otherwise: DATA_DIR/advice/<the QA folder's name>."""
    return data_dir / ADVICE_FOLDER / dataset.resolve().name


QUALITY_PARTS = ("token_f1", "containment", "citation_precision", "refusal_accuracy", "answered_rate")
RULE = (
    "quality is the mean of token F1, containment, citation precision, refusal accuracy and 1 - false refusal "
    "rate (the figures a model has; all on 0-1); the advice is the smallest model on disk whose quality is at "
    "most {tolerance:g} below the best model's, the better of equal sizes; only models measured on every "
    "question are candidates"
)


@dataclass
class QuestionResult:
    """What one model did with one question: one line of results.jsonl, so a rerun skips it."""

    model: str
    question_id: str
    answerable: bool
    refused: bool
    error: str | None = None
    token_f1: float | None = None
    containment: float | None = None
    citations: int = 0
    citations_correct: int = 0
    first_token_ms: float | None = None
    tokens: int = 0
    writing_ms: float | None = None
    """From the first streamed token to the last."""
    peak_memory_mb: float | None = None
    first_useful_ms: float | None = None
    """Until the first useful text: the documents' quoted evidence, or the answer's first token."""

    def to_json(self) -> dict[str, Any]:
        """The results.jsonl line."""
        return asdict(self)

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> QuestionResult:
        """A line ``to_json`` wrote."""
        return cls(**raw)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


@dataclass
class ModelReport:
    """One model's figures over the questions."""

    model: ModelEntry
    questions: int
    token_f1: float | None
    containment: float | None
    citation_precision: float | None
    refusal_accuracy: float | None
    false_refusal_rate: float | None
    errors: int
    first_token_p50_ms: float | None
    first_token_p95_ms: float | None
    tokens_per_s: float | None
    peak_memory_mb: float | None
    """Resident memory the process gained while the model loaded and answered (Linux VmHWM, reset first)."""
    first_useful_p50_ms: float | None = None
    first_useful_p95_ms: float | None = None
    """Until the first useful text (the quoted evidence or the answer), over the questions not refused early."""

    @property
    def size_bytes(self) -> int | None:
        """The model's size on disk (as the server states it for served models)."""
        return self.model.size_bytes

    @property
    def quality(self) -> float | None:
        """The mean of the quality figures this model has (see RULE)."""
        answered = None if self.false_refusal_rate is None else 1 - self.false_refusal_rate
        parts = [self.token_f1, self.containment, self.citation_precision, self.refusal_accuracy, answered]
        return _mean([p for p in parts if p is not None])

    @classmethod
    def of(cls, model: ModelEntry, results: list[QuestionResult]) -> ModelReport:
        """Figures from one model's results, scored as ``assistant.evaluation`` scores them."""
        answerable = [r for r in results if r.answerable]
        unanswerable = [r for r in results if not r.answerable]
        scored = [r for r in answerable if r.token_f1 is not None]
        cited = sum(r.citations for r in scored)
        first = [r.first_token_ms for r in results if r.first_token_ms is not None]
        useful = [r.first_useful_ms for r in results if r.first_useful_ms is not None]
        writing_s = sum((r.writing_ms or 0) for r in results if r.tokens > 1) / 1000
        tokens = sum(r.tokens - 1 for r in results if r.tokens > 1)
        memory = [r.peak_memory_mb for r in results if r.peak_memory_mb is not None]
        return cls(
            model=model, questions=len(results),
            token_f1=_mean([r.token_f1 for r in scored if r.token_f1 is not None]),
            containment=_mean([r.containment for r in scored if r.containment is not None]),
            citation_precision=round(sum(r.citations_correct for r in scored) / cited, 4) if cited else None,
            refusal_accuracy=_mean([float(r.refused) for r in unanswerable]),
            false_refusal_rate=_mean([float(r.refused) for r in answerable]),
            errors=sum(1 for r in results if r.error),
            first_token_p50_ms=_pct(first, 0.5), first_token_p95_ms=_pct(first, 0.95),
            tokens_per_s=round(tokens / writing_s, 2) if writing_s > 0 else None,
            peak_memory_mb=round(max(memory), 1) if memory else None,
            first_useful_p50_ms=_pct(useful, 0.5), first_useful_p95_ms=_pct(useful, 0.95),
        )

    def to_json(self) -> dict[str, Any]:
        """The model's line of advice.json."""
        out = {k: v for k, v in asdict(self).items() if k != "model"}
        return {"model": self.model.to_json(), **out, "size_bytes": self.size_bytes, "quality": self.quality}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelReport:
        """The line ``to_json`` wrote (size and quality are worked out again)."""
        names = {f.name for f in fields(cls)} - {"model"}
        return cls(model=ModelEntry.from_json(raw["model"]), **{k: v for k, v in raw.items() if k in names})


def choose(reports: list[ModelReport], tolerance: float) -> tuple[ModelReport | None, str]:
    """The smallest model whose quality is within ``tolerance`` of the best (see RULE), and why."""
    rated = [r for r in reports if r.quality is not None]
    if not rated:
        return None, "no model produced figures"
    best = max(rated, key=lambda r: r.quality or 0.0)
    best_quality = best.quality or 0.0
    close = [r for r in rated if (r.quality or 0.0) >= best_quality - tolerance - 1e-9]
    chosen = min(close, key=lambda r: (r.size_bytes if r.size_bytes is not None else math.inf, -(r.quality or 0.0)))
    if chosen is best:
        return chosen, (f"{chosen.model.name} has the best quality ({best_quality:.3f}) and no smaller model "
                        f"is within {tolerance:g} of it")
    return chosen, (f"{chosen.model.name} (quality {chosen.quality:.3f}) is within {tolerance:g} of the best, "
                    f"{best.model.name} ({best_quality:.3f}), and smaller on disk")


@dataclass
class Advice:
    """What advice.json holds: every model's figures, the rule and the model it names."""

    dataset: str
    questions: int
    tolerance: float
    models: list[ModelReport]
    chosen: ModelReport | None
    reason: str
    plot: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rule(self) -> str:
        """The choice rule, with this run's tolerance."""
        return RULE.format(tolerance=self.tolerance)

    def to_json(self) -> dict[str, Any]:
        """The advice as advice.json and `advise --json` give it."""
        return {
            "dataset": self.dataset, "questions": self.questions, "tolerance": self.tolerance, "rule": self.rule,
            "chosen": self.chosen.model.name if self.chosen else None, "reason": self.reason,
            "models": [r.to_json() for r in self.models], "plot": self.plot, "notes": self.notes,
            "peak_memory": "resident memory the advisor's process gained while each model loaded and answered "
                           "(Linux VmHWM after resetting it, minus the resident memory before; MiB)",
            "tokens_per_s": "streamed pieces after the first per second of writing (llama.cpp streams one "
                            "token a piece)",
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Advice:
        """The advice ``to_json`` wrote (advice.json)."""
        models = [ModelReport.from_json(m) for m in raw["models"]]
        chosen = next((r for r in models if r.model.name == raw.get("chosen")), None)
        return cls(raw["dataset"], raw["questions"], raw["tolerance"], models, chosen, raw["reason"],
                   plot=raw.get("plot"), notes=list(raw.get("notes") or []))


def draw(advice: Advice, target: Path) -> Path:
    """Quality against size on disk, one labelled point a model, the marker's area growing with first-token p50.

    Raises:
        ImportError: matplotlib is not installed.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import ScalarFormatter

    figure = Figure(figsize=(7, 4.5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    drawn = [r for r in advice.models if r.size_bytes and r.quality is not None]
    for report in drawn:
        seconds = (report.first_token_p50_ms or 0) / 1000
        chosen = report is advice.chosen
        point = ((report.size_bytes or 0) / 2**20, report.quality or 0.0)
        axes.scatter(*point, s=40 + 60 * seconds, color="tab:green" if chosen else "tab:blue", alpha=0.7,
                     edgecolors="black")
        label = f"{report.model.name}\nfirst token {seconds:.1f} s" + (" (advised)" if chosen else "")
        axes.annotate(label, point, fontsize=7, xytext=(6, 6), textcoords="offset points")
    if drawn:
        axes.set_xscale("log")
        axes.xaxis.set_major_formatter(ScalarFormatter())
        axes.margins(x=0.35, y=0.2)  # room for the labels right of the points
    axes.set_xlabel("size on disk (MiB, log scale)")
    axes.set_ylabel("quality (mean of the answer figures)")
    axes.set_title(f"{advice.dataset}: {advice.questions} questions; marker area grows with first-token time",
                   fontsize=9)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(target)
    return target
