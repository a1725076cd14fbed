"""``run.py ask`` and ``eval``: answer one question, or measure answers over a QA set."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from contextlib import suppress
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from assistant.errors import GenerationError
from assistant.evaluation import Evaluation, load_qa
from assistant.events import Done
from ui.cli.options import CliOptions, emit, err, open_services, out, shared_options
from ui.cli.terminal import print_eval, render_answer


def register_answer_commands(app: typer.Typer) -> None:
    """Add ``ask`` and ``eval`` to the app."""

    @app.command()
    @shared_options
    def ask(
        options: CliOptions,
        question: Annotated[str, typer.Argument(help="The question to answer.")],
        collection: Annotated[list[str] | None, typer.Option(help="Collection to search (repeatable).")] = None,
        retrieve_only: Annotated[bool, typer.Option("--retrieve-only", help="Skip generation.")] = False,
    ) -> None:
        """Answer a question from the documents, with numbered sources.

        Exits 3 when the sources were found but the model could not answer (its error is printed).
        """
        with open_services(options) as services:
            loading = time.perf_counter()  # models load first, so the timings are the search and the answer
            services.retriever.warm_up(spelling=False)
            if not retrieve_only:
                with suppress(GenerationError):  # no model answers: shown after the sources, as always
                    services.answers.warm_up()
            load_ms = (time.perf_counter() - loading) * 1000
            events = services.answers.ask(question, collections=collection, retrieve_only=retrieve_only)
            if options.as_json:
                final = next(e.answer for e in events if isinstance(e, Done))
                final.timings["load_ms"] = load_ms
                sys.stdout.write(json.dumps(final.as_json()) + "\n")
            else:
                final = render_answer(out, events)
        if final is not None and final.error:
            raise typer.Exit(3)  # the sources were shown, but no answer was generated: scripts must notice

    @app.command(name="eval")
    @shared_options
    def evaluate(
        options: CliOptions,
        dataset: Annotated[Path, typer.Argument(help="A QA set folder: docs/ and qa.jsonl.")],
        retrieve_only: Annotated[bool, typer.Option("--retrieve-only", help="Measure retrieval only.")] = False,
        limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    ) -> None:
        """Ingest a QA set (into a temporary data dir unless --data-dir) and report quality figures."""
        with (
            tempfile.TemporaryDirectory(prefix="enclave-eval-") as scratch,
            open_services(replace(options, data_dir=options.data_dir or Path(scratch))) as services,
        ):
            items = load_qa(dataset)[:limit]
            services.ingest.ingest(dataset / "docs")
            report = Evaluation(services, retrieve_only).run(
                items, None if options.as_json else lambda i, n: err.print(f"question {i}/{n}", end="\r")
            )
            emit(options, report, lambda: print_eval(out, report))
