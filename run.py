"""Enclave's command line: parse arguments, build services, run one command."""

from __future__ import annotations

from assistant.offline import enforce_offline

enforce_offline()  # before typer pulls in anything that might import a model library

import json  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, TypeVar  # noqa: E402

import typer  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from rich.console import Console  # noqa: E402

from assistant.errors import EnclaveError  # noqa: E402
from assistant.services import Services, build_services  # noqa: E402
from assistant.settings import Settings, load_settings  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enclave: a private document assistant.")
err = Console(stderr=True)
out = Console()
T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder holding all state (default ~/.local/share/enclave).")
]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="TOML settings file (default DATA_DIR/enclave.toml).")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


def _settings(data_dir: Path | None, config: Path | None) -> Settings:
    try:
        return load_settings(data_dir=data_dir, config_file=config)
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@contextmanager
def _services(data_dir: Path | None, config: Path | None) -> Iterator[Services]:
    """Build services and translate Enclave errors into a message and exit code 1."""
    services = None
    try:
        services = build_services(_settings(data_dir, config))
        yield services
    except EnclaveError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc
    finally:
        if services is not None:
            services.close()


def _emit(as_json: bool, payload: dict[str, Any], render: Callable[[dict[str, Any]], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        render(payload)


@app.command()
def ingest(
    path: Annotated[Path, typer.Argument(help="Folder (or file share) to ingest.")],
    collection: Annotated[str | None, typer.Option(help="Collection to ingest into.")] = None,
    sync: Annotated[bool, typer.Option("--sync", help="Remove documents whose files are gone.")] = False,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Ingest new and changed files of a folder; unchanged files are skipped."""
    from ui.terminal import RichIngestProgress, print_ingest_summary

    with _services(data_dir, config) as services:
        if as_json or not err.is_terminal:
            report = services.ingest.ingest(path, collection, sync)
        else:
            with RichIngestProgress(err) as bar:
                report = services.ingest.ingest(path, collection, sync, progress=bar)
        _emit(as_json, report.as_json(), lambda s: print_ingest_summary(out, s))


@app.command()
def status(as_json: JsonFlag = False, data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Collections, documents, chunks, embedding model and index size."""
    from ui.terminal import print_status

    with _services(data_dir, config) as services:
        _emit(as_json, services.corpus.status(), lambda s: print_status(out, s))


@app.command()
def reindex(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Re-embed every chunk with the configured embedding model (after changing it)."""
    with _services(data_dir, config) as services:
        done = services.corpus.reembed(lambda d, t: err.print(f"re-embedded {d}/{t} chunks", end="\r"))
        out.print(f"re-embedded {done} chunks with {services.settings.embedding.model}")


if __name__ == "__main__":
    app()
