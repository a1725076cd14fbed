"""``run.py quality export``: the install's own QA set, from the answers admins wrote on the Quality tab."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.audit import SYSTEM
from ui.cli.options import CliOptions, command_group, emit, err, open_services, out, shared_options


def quality_app() -> typer.Typer:
    """The ``quality`` command group."""
    app = command_group("The install's own questions and the answers admins expect.")

    @app.command()
    @shared_options
    def export(
        options: CliOptions,
        out_dir: Annotated[Path, typer.Argument(help="A new or empty folder to write docs/ and qa.jsonl into.")],
        collection: Annotated[str | None, typer.Option(help="Only this collection's questions.")] = None,
    ) -> None:
        """Write the expected answers as a QA set (docs/ + qa.jsonl) that `eval` and `advise` run on."""
        with open_services(options) as services:
            summary = services.web.quality.export(SYSTEM, out_dir, collection)

        def show() -> None:
            out.print(f"{summary.questions} question(s) ({summary.unanswerable} not in the documents) and "
                      f"{summary.documents} document(s) written to {summary.folder}", highlight=False)
            for missing in summary.missing:
                err.print(f"[yellow]not on disk, not copied:[/yellow] {missing}", highlight=False)

        emit(options, summary.as_json(), show)

    return app
