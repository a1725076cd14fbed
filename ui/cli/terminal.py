"""Terminal rendering for the CLI: progress bars, summaries, answers and evaluation figures."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table


class TableProgress:
    """A progress bar per table while rows are copied (copy-database, backup, restore)."""

    def __init__(self, console: Console) -> None:
        self.bar = Progress(TextColumn("{task.description:<18}"), BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), console=console)
        self.tasks: dict[str, TaskID] = {}

    def __call__(self, table: str, done: int, total: int) -> None:
        if table not in self.tasks:
            self.tasks[table] = self.bar.add_task(table, total=total)
        self.bar.update(self.tasks[table], completed=done)

    def __enter__(self) -> TableProgress:
        self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()


class RichIngestProgress:
    """Files done of total, chunks embedded, files per second and ETA, on stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.chunks = 0
        self.failed = 0
        self.progress = Progress(
            TextColumn("[bold]ingest"), BarColumn(), MofNCompleteColumn(), TextColumn("files"),
            TextColumn("{task.fields[chunks]} chunks"), TextColumn("{task.fields[failed]} failed"),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            TextColumn("[dim]{task.fields[now]}"), console=console, transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichIngestProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, total_files: int) -> None:
        self.task = self.progress.add_task("ingest", total=total_files, chunks=0, failed=0, rate="", now="")

    def file_done(self, path: str, outcome: str, chunks: int, reason: str = "") -> None:
        if self.task is None:
            return
        self.chunks += chunks
        self.failed += outcome == "failed"
        task = self.progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{(task.completed + 1) / elapsed:.1f} files/s" if elapsed > 0 else ""
        self.progress.update(self.task, advance=1, chunks=self.chunks, failed=self.failed, rate=rate)

    def flush(self) -> None:
        """Nothing waits: every file is shown as it is done."""

    def doing(self, what: str) -> None:
        if self.task is not None:
            self.progress.update(self.task, now=what)


def print_ingest_summary(console: Console, summary: dict[str, Any]) -> None:
    """Counts, then one line per failed file with its reason."""
    console.print(
        f"added {summary['added']}, updated {summary['updated']}, unchanged {summary['unchanged']}, "
        f"renamed {summary['renamed']}, removed {summary['removed']}, failed {len(summary['failed'])} "
        f"in {summary['seconds']:.1f} s; collection now holds {summary['documents']} documents, "
        f"{summary['chunks']} chunks"
    )
    for failure in summary["failed"]:
        console.print(f"  [red]failed[/red] {failure['path']}: {failure['reason']}", highlight=False)


def print_status(console: Console, status: dict[str, Any]) -> None:
    """A table of collections, then the model and index size."""
    table = Table("collection", "documents", "pages", "chunks")
    for c in status["collections"]:
        table.add_row(c["name"], str(c["documents"]), str(c["pages"]), str(c["chunks"]))
    console.print(table)
    model = status["embedding_model"] or "(none yet)"
    if status["embedding_dim"]:
        model += f" ({status['embedding_dim']} dimensions)"
    console.print(f"embedding model: {model}; index size: {status['index_bytes'] / 2**20:.1f} MB")


def render_answer(console: Console, events: Any) -> Any:
    """Stream an answer's tokens, then its numbered sources (no scores: ``--json`` has them) and, under each
    cited one, the sentences that back the answer; returns the final Answer."""
    from assistant.events import Done, Evidence, Stage, Status, Token

    final = None
    for event in events:
        if isinstance(event, Status) and event.stage in (Stage.REWRITING, Stage.INDEXING, Stage.GENERATING):
            console.print(f"[dim]{event.stage}: {event.detail}[/dim]", highlight=False)
        elif isinstance(event, Evidence):  # the documents' own sentences first: the model may take seconds
            console.print("[dim]From the documents:[/dim]", highlight=False)
            for quote in event.quotes:
                console.print(f"  {quote.line}", highlight=False, markup=False)
        elif isinstance(event, Token):
            console.print(event.text, end="", highlight=False, markup=False)
        elif isinstance(event, Done):
            final = event.answer
    if final is None:
        return None
    if final.refused:
        console.print(f"{final.text} [dim]({final.refusal_reason})[/dim]", highlight=False)
    elif final.quoted:  # what streamed was the model's, and could not be used
        console.print(f"\n[dim]The model's answer could not be used ({final.quoted}).[/dim]", highlight=False)
        if final.evidence:
            console.print("[dim]The answer is the quotes from the documents above.[/dim]", highlight=False)
        else:
            console.print(final.text, highlight=False, markup=False)
    if final.error:
        console.print(f"\n[red]{final.error}[/red]", highlight=False)
    console.print()
    cited = {c.n: c for c in final.citations}
    for n, p in enumerate(final.retrieved, 1):
        citation = cited.get(n)
        where = p.chunk.file + (f" p.{p.chunk.page}" if p.chunk.page else "")
        heading = f" > {p.chunk.heading}" if p.chunk.heading else ""
        mark = f" ({citation.kind})" if citation else ""
        console.print(f"[{n}] {where}{heading}{mark}", highlight=False, markup=False)
        for sentence in final.support(citation) if citation and citation.kind != "quoted" else []:  # not twice
            console.print(f"    “{sentence}”", highlight=False, markup=False)
    unsupported = [s.text for s in final.sentences if s.status == "unsupported"]
    for text in unsupported:
        console.print(f"[yellow]unsupported by the documents:[/yellow] {text}", highlight=False)
    if not final.error:
        console.print(f"[dim]answered by {final.backend}[/dim]")
    return final


def print_eval(console: Console, report: dict[str, Any]) -> None:
    """Retrieval, answer and latency figures, overall and per question type."""
    rows = [("overall", report), *report.get("by_type", {}).items()]
    table = Table("type", "n", "file@1", "file@5", "file@10", "page@5", "mrr@10", "f1", "contain",
                  "cite prec", "refusal acc", "false refusal")
    for name, fig in rows:
        r, a = fig["retrieval"], fig.get("answers") or {}
        cells = [r["file_recall@1"], r["file_recall@5"], r["file_recall@10"], r["page_recall@5"], r["mrr@10"],
                 a.get("token_f1"), a.get("containment"), a.get("citation_precision"), a.get("refusal_accuracy"),
                 a.get("false_refusal_rate")]
        table.add_row(name, str(fig["questions"]), *("-" if c is None else f"{c:.3f}" for c in cells))
    console.print(table)
    lat = report["latency_ms"]
    console.print(", ".join(f"{k} {'-' if v is None else f'{v:.0f}'} ms" for k, v in lat.items()))
    for reason, counts in (report.get("answers") or {}).get("refusals_by_reason", {}).items():
        console.print(
            f"refused by '{reason}': {counts['unanswerable']} unanswerable, {counts['answerable']} answerable"
        )
