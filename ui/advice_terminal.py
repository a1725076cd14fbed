"""Terminal rendering of the model-size advisor: one progress bar a model, and the advice as a table."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.advice import Advice


class AdviceProgress:
    """Questions done of total for each model, on stderr; pass the instance as ``advise``'s progress."""

    def __init__(self, console: Console) -> None:
        self.progress = Progress(TextColumn("{task.description:<32}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("questions"), TimeElapsedColumn(), console=console, transient=False)
        self.tasks: dict[str, TaskID] = {}

    def __enter__(self) -> AdviceProgress:
        self.progress.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.progress.stop()

    def __call__(self, model: str, done: int, total: int) -> None:
        if model not in self.tasks:
            self.tasks[model] = self.progress.add_task(model[:32], total=total)
        self.progress.update(self.tasks[model], completed=done, total=total)


def _figure(value: float | None, digits: int = 2) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def print_advice(console: Console, advice: Advice) -> None:
    """Every model's figures, then the advice, its reason and where the plot is."""
    table = Table(title=f"{advice.dataset}: {advice.questions} questions")
    for column in ("model", "size MiB", "quality", "F1", "contain.", "cit. prec.", "refusal acc.", "false ref.",
                   "1st useful p50 s", "1st token p50 s", "p95 s", "tokens/s", "peak MiB"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for r in advice.models:
        ms = [None if v is None else v / 1000 for v in (r.first_token_p50_ms, r.first_token_p95_ms)]
        useful = None if r.first_useful_p50_ms is None else r.first_useful_p50_ms / 1000
        table.add_row(
            r.model.name + (" *" if r is advice.chosen else ""),
            _figure(r.size_bytes / 2**20 if r.size_bytes else None, 0), _figure(r.quality, 3),
            _figure(r.token_f1), _figure(r.containment), _figure(r.citation_precision),
            _figure(r.refusal_accuracy), _figure(r.false_refusal_rate), _figure(useful), _figure(ms[0]),
            _figure(ms[1]),
            _figure(r.tokens_per_s, 1), _figure(r.peak_memory_mb, 0),
        )
    console.print(table)
    console.print(f"[bold]advice:[/bold] {advice.reason}", highlight=False)
    console.print(f"rule: {advice.rule}", highlight=False)
    for note in advice.notes:
        console.print(f"note: {note}", highlight=False)
    if advice.plot:
        console.print(f"plot: {advice.plot}", highlight=False)
