"""``run.py models list|add|use`` and ``run.py advise``: the models the install can answer with, and which
of them holds quality at the smallest size on the admins' own questions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from assistant.advisor import DEFAULT_TOLERANCE, advise_catalogue
from assistant.audit import SYSTEM
from assistant.models.service import ModelsView
from ui.advice_terminal import AdviceProgress, print_advice
from ui.cli.options import (
    CliOptions,
    command_group,
    emit,
    enclave_errors,
    err,
    open_services,
    out,
    settings_or_exit,
    shared_options,
)
from ui.model_table import MODEL_COLUMNS, count, kind, model_row


def _print_models(view: ModelsView) -> None:
    table = Table(*MODEL_COLUMNS)
    for entry in view.catalogue.models:
        table.add_row(*model_row(entry, entry.key == view.answering_key, sha256_chars=12).values())
    out.print(table)
    out.print(f"answering now: {view.answering}", highlight=False)
    for problem in view.catalogue.problems:
        err.print(f"[yellow]note:[/yellow] {problem}", highlight=False)


def models_app() -> typer.Typer:
    """The ``models`` command group, acting through the same service as the admin Models page."""
    app = command_group("The models the install can answer with.")

    @app.command("list")
    @shared_options
    def list_catalogue(
        options: CliOptions,
        no_checksums: Annotated[bool, typer.Option(
            "--no-checksums", help="Skip hashing files not hashed before (their sha256 is left empty).")] = False,
    ) -> None:
        """Every model: packaged, in DATA_DIR/models, in an Ollama store, on the configured servers."""
        with open_services(options) as services:
            view = services.web.models.models(SYSTEM, checksums=not no_checksums)
        emit(options, view.to_json(), lambda: _print_models(view))

    @app.command()
    @shared_options
    def add(options: CliOptions, file: Annotated[Path, typer.Argument(help="A .gguf model file.")]) -> None:
        """Copy a GGUF model into DATA_DIR/models (checked first), e.g. from removable media."""
        with open_services(options) as services:
            entry = services.web.models.add(SYSTEM, file)
        emit(options, entry.to_json(), lambda: out.print(
            f"added {entry.name} ({kind(entry) or 'kind not stated'}, {count(entry.parameters) or '?'} parameters, "
            f"sha256 {entry.sha256}); answer with it: run.py models use {entry.name}", highlight=False))

    @app.command()
    @shared_options
    def use(options: CliOptions, name: Annotated[str, typer.Argument(help="A name `models list` shows.")]) -> None:
        """Answer with this model from now on, in every process (as the admin Settings page does)."""
        with open_services(options) as services:
            entry = services.web.models.use(SYSTEM, name)
            label = services.web.runtime.model_label()
        emit(options, {"model": entry.to_json(), "answering": label},
             lambda: out.print(f"answering with {label} from the next question, in every process", highlight=False))

    return app


def register_model_commands(app: typer.Typer) -> None:
    """Add the ``models`` group and ``advise`` to the app."""
    app.add_typer(models_app(), name="models")

    @app.command()
    @shared_options
    def advise(
        options: CliOptions,
        dataset: Annotated[Path, typer.Argument(help="A QA set folder: docs/ and qa.jsonl.")],
        models: Annotated[str | None, typer.Option(
            help="Comma-separated names from `models list` (default: every GGUF file on this machine).")] = None,
        limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
        out_dir: Annotated[Path | None, typer.Option(
            "--out", help="Where the results go (default DATA_DIR/advice/<QA folder name>); rerun to resume.")] = None,
        tolerance: Annotated[float, typer.Option(
            help="How far below the best quality (0-1) the advised model may be.")] = DEFAULT_TOLERANCE,
    ) -> None:
        """Ask each model the same questions with the same retrieval; name the smallest that holds quality."""
        settings = settings_or_exit(options.data_dir, options.config)
        names = [n.strip() for n in models.split(",") if n.strip()] if models else None
        with enclave_errors(), AdviceProgress(err) as progress:
            advice = advise_catalogue(settings, dataset, names, limit, out_dir, progress, tolerance)
        emit(options, advice.to_json(), lambda: print_advice(out, advice))
