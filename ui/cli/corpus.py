"""``run.py ingest``, ``status`` and ``reindex``: what is in the document index and how it gets there."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ui.cli.options import CliOptions, emit, err, open_services, out, shared_options
from ui.cli.terminal import RichIngestProgress, print_ingest_summary, print_status


def register_corpus_commands(app: typer.Typer) -> None:
    """Add ``ingest``, ``status`` and ``reindex`` to the app."""

    @app.command()
    @shared_options
    def ingest(
        options: CliOptions,
        path: Annotated[Path, typer.Argument(help="Folder (or file share) to ingest.")],
        collection: Annotated[str | None, typer.Option(help="Collection to ingest into.")] = None,
        sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose files are gone.")] = False,
    ) -> None:
        """Ingest new and changed files of a folder; unchanged files are skipped."""
        with open_services(options) as services:
            if options.as_json or not err.is_terminal:
                report = services.ingest.ingest(path, collection, sync)
            else:
                with RichIngestProgress(err) as bar:
                    report = services.ingest.ingest(path, collection, sync, progress=bar)
            summary = report.as_json()
            emit(options, summary, lambda: print_ingest_summary(out, summary))

    @app.command()
    @shared_options
    def status(options: CliOptions) -> None:
        """Collections, documents, chunks, embedding model and index size."""
        with open_services(options) as services:
            figures = services.corpus.status()
            emit(options, figures, lambda: print_status(out, figures))

    @app.command()
    @shared_options
    def reindex(options: CliOptions) -> None:
        """Re-embed every chunk with the configured embedding model (after changing it)."""
        with open_services(options) as services:
            done = services.corpus.reembed(
                None if options.as_json else lambda d, t: err.print(f"re-embedded {d}/{t} chunks", end="\r"))
            model = services.settings.embedding.model
            emit(options, {"chunks": done, "embedding_model": model},
                 lambda: out.print(f"re-embedded {done} chunks with {model}"))
