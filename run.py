"""Enclave's command line: parse arguments, build services, run one command."""

from __future__ import annotations

from assistant.offline import enforce_offline

enforce_offline()  # before typer pulls in anything that might import a model library

import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from contextlib import contextmanager, suppress  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Any, TypeVar  # noqa: E402

import typer  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from rich.console import Console  # noqa: E402

from assistant.errors import EnclaveError  # noqa: E402
from assistant.services import Services, build_services  # noqa: E402
from assistant.settings import Settings, load_settings  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Enclave: a private document assistant.")
err = Console(stderr=True, soft_wrap=True)
out = Console()
T = TypeVar("T")

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder holding all state (default ~/.local/share/enclave).")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default DATA_DIR/enclave.toml).")
]
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
def _services(
    data_dir: Path | None, config: Path | None, serving: bool = False, no_worker: bool = False
) -> Iterator[Services]:
    """Build services and translate Enclave errors into a message and exit code 1.

    An app process serving beside a `run.py worker` (``no_worker`` or ``jobs.in_process_worker =
    false``) runs no jobs and only reads the index versions the worker writes.
    """
    services = None
    try:
        settings = _settings(data_dir, config)
        if no_worker:
            settings = settings.changed("jobs", in_process_worker=False)
        services = build_services(settings, index_writer=not (serving and not settings.jobs.in_process_worker))
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
def ask(
    question: Annotated[str, typer.Argument(help="The question to answer.")],
    collection: Annotated[list[str] | None, typer.Option(help="Collection to search (repeatable).")] = None,
    retrieve_only: Annotated[bool, typer.Option("--retrieve-only", help="Skip generation.")] = False,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Answer a question from the documents, with numbered sources.

    Exits 3 when the sources were found but the model could not answer (its error is printed).
    """
    from assistant.errors import GenerationError
    from assistant.events import Done
    from ui.terminal import render_answer

    with _services(data_dir, config) as services:
        loading = time.perf_counter()  # models load first, so the timings are the search and the answer
        services.retriever.warm_up(spelling=False)
        if not retrieve_only:
            with suppress(GenerationError):  # no model answers: shown after the sources, as always
                services.answers.warm_up()
        load_ms = (time.perf_counter() - loading) * 1000
        events = services.answers.ask(question, collections=collection, retrieve_only=retrieve_only)
        if as_json:
            final = next(e.answer for e in events if isinstance(e, Done))
            final.timings["load_ms"] = load_ms
            sys.stdout.write(json.dumps(final.as_json()) + "\n")
        else:
            final = render_answer(out, events)
    if final is not None and final.error:
        raise typer.Exit(3)  # the sources were shown, but no answer was generated: scripts must notice


@app.command(name="eval")
def evaluate(
    dataset: Annotated[Path, typer.Argument(help="A QA set folder: docs/ and qa.jsonl.")],
    retrieve_only: Annotated[bool, typer.Option("--retrieve-only", help="Measure retrieval only.")] = False,
    limit: Annotated[int | None, typer.Option(help="Only the first N questions.")] = None,
    as_json: JsonFlag = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Ingest a QA set (into a temporary data dir unless --data-dir) and report quality figures."""
    import tempfile

    from assistant.evaluation import Evaluation, load_qa
    from ui.terminal import print_eval

    with (
        tempfile.TemporaryDirectory(prefix="enclave-eval-") as scratch,
        _services(data_dir or Path(scratch), config) as services,
    ):
        items = load_qa(dataset)[:limit]
        services.ingest.ingest(dataset / "docs")
        report = Evaluation(services, retrieve_only).run(
            items, None if as_json else lambda i, n: err.print(f"question {i}/{n}", end="\r")
        )
        _emit(as_json, report, lambda r: print_eval(out, r))


@app.command()
def reindex(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Re-embed every chunk with the configured embedding model (after changing it)."""
    with _services(data_dir, config) as services:
        done = services.corpus.reembed(lambda d, t: err.print(f"re-embedded {d}/{t} chunks", end="\r"))
        out.print(f"re-embedded {done} chunks with {services.settings.embedding.model}")


@app.command()
def serve(
    no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser (servers).")] = False,
    host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on (default web.port).")] = None,
    no_worker: Annotated[bool, typer.Option(
        "--no-worker", help="Run no ingest jobs here: `run.py worker` runs them (several app processes).")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Start the web app; prints its address and opens a browser on desktops."""
    from ui.server import serve as run_server

    with _services(data_dir, config, serving=True, no_worker=no_worker) as services:
        web = services.settings.web
        services.settings = services.settings.changed("web", host=host or web.host, port=port or web.port)
        if services.settings.jobs.in_process_worker:
            services.web.jobs.start_worker()  # jobs queued before a restart carry on
        run_server(services, not no_browser, out.print)


@app.command()
def worker(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Run queued ingest jobs, the one writer of index versions, beside `serve --no-worker` app processes."""
    import logging
    import signal

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C: the running job is queued again
    with _services(data_dir, config) as services:
        jobs = services.web.jobs
        out.print(f"Ingest worker {jobs.worker_name} is waiting for jobs (Ctrl-C stops it)")
        try:
            jobs.run_worker()
        except KeyboardInterrupt:
            out.print("Ingest worker stopped")


def _users_app() -> typer.Typer:
    from ui.tokens_cli import tokens_app
    from ui.users_cli import users_app

    target: dict[str, Path | None] = {}
    users = users_app(lambda: _services(target.get("data_dir"), target.get("config")), out)
    users.add_typer(tokens_app(lambda: _services(target.get("data_dir"), target.get("config")), out), name="token")

    @users.callback()
    def options(data_dir: DataDir = None, config: ConfigFile = None) -> None:
        """Users, groups and which groups may read which collections."""
        target.update(data_dir=data_dir, config=config)

    return users


app.add_typer(_users_app(), name="users")


def _admin_commands() -> None:
    from ui.admin_cli import register_admin_commands

    register_admin_commands(app, _settings, out, err)  # copy-database, backup, restore


_admin_commands()

if __name__ == "__main__":
    app()
