"""Terminal rendering for the CLI: the ingest progress bar and summaries."""

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
            console=console, transient=False,
        )
        self.task: TaskID | None = None

    def __enter__(self) -> RichIngestProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def started(self, total_files: int) -> None:
        self.task = self.progress.add_task("ingest", total=total_files, chunks=0, failed=0, rate="")

    def file_done(self, path: str, outcome: str, chunks: int) -> None:
        if self.task is None:
            return
        self.chunks += chunks
        self.failed += outcome == "failed"
        task = self.progress.tasks[0]
        elapsed = task.elapsed or 0.0
        rate = f"{(task.completed + 1) / elapsed:.1f} files/s" if elapsed > 0 else ""
        self.progress.update(self.task, advance=1, chunks=self.chunks, failed=self.failed, rate=rate)


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
    console.print(
        f"embedding model: {status['embedding_model'] or '(none yet)'}"
        f"{f' ({status['embedding_dim']} dimensions)' if status['embedding_dim'] else ''}; "
        f"index size: {status['index_bytes'] / 2**20:.1f} MB"
    )
