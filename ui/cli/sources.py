"""``run.py sources ...``: folders kept in step with a collection, managed from the server's shell (as admin)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from assistant.audit import SYSTEM
from assistant.sources import Source, SourceRun
from ui.cli.options import CliOptions, command_group, emit, open_services, out, shared_options


def _counts(run: SourceRun | None) -> str:
    if run is None:
        return "never run"
    c = run.counts
    text = (f"{run.state}: {c.get('added', 0)} added, {c.get('updated', 0)} updated, {c.get('renamed', 0)} renamed, "
            f"{c.get('removed', 0)} removed, {c.get('unchanged', 0)} unchanged, {c.get('failed', 0)} failed")
    return f"{text}; {run.reason}" if run.reason else text


def print_run(console: Console, run: SourceRun) -> None:
    """One run for people: when, why, the counts, the phases and each failed file with its reason."""
    started = f"{run.started:%Y-%m-%d %H:%M:%S}" if run.started else "not started"
    console.print(f"job {run.job} ({run.trigger}), started {started}: {_counts(run)}", highlight=False)
    if run.phases:
        console.print("  phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in run.phases.items()), highlight=False)
    for f in run.failures:
        console.print(f"  failed {f.path}: {f.reason}", highlight=False)


def _show(options: CliOptions, source: Source, message: str) -> None:
    emit(options, {"source": source.as_json()}, lambda: out.print(message, highlight=False))


def sources_app() -> typer.Typer:
    """The ``sources`` command group, acting through the same service as the admin page and the API."""
    app = command_group("Folders kept in step with a collection: on a schedule, on change, and on demand.")

    @app.command()
    @shared_options
    def add(options: CliOptions, name: str,
            folder: Annotated[str, typer.Argument(help="The folder or mounted share to follow.")],
            collection: Annotated[str, typer.Option(help="The collection its documents go into.")],
            schedule: Annotated[str | None, typer.Option(
                help="'every 15m' (s, m, h, d) or a cron expression in UTC; default sources.default_schedule.")] = None,
            include: Annotated[list[str] | None, typer.Option(
                help="Only files matching this glob, e.g. '*.pdf' or 'policies/*' (repeatable).")] = None,
            exclude: Annotated[list[str] | None, typer.Option(
                help="Leave out files and folders matching this glob (repeatable).")] = None,
            max_file_mb: Annotated[float | None, typer.Option(help="Skip larger files (default ingest.max_file_mb).")]
            = None,
            max_removal_share: Annotated[float | None, typer.Option(
                help="Hold a run that would remove a larger share of the documents (default 0.2).")] = None) -> None:
        """Register a folder as a source; its first run is queued for the worker (`sources sync` runs it now)."""
        with open_services(options, no_worker=True) as services:
            source = services.web.sources.add(SYSTEM, name, folder, collection, schedule, include or (),
                                              exclude or (), max_file_mb, max_removal_share)
        _show(options, source, f"added {source.name}: {source.folder} -> {source.collection}, {source.schedule}; "
                               "its first run is queued")

    @app.command("list")
    @shared_options
    def list_sources(options: CliOptions) -> None:
        """Every source: folder, collection, schedule, on or off, and its last run (held ones say why)."""
        with open_services(options, no_worker=True) as services:
            found = services.web.sources.sources(SYSTEM)
        table = Table("source", "folder", "collection", "schedule", "on", "last run")
        for s in found:
            state = " (run queued)" if s.queued else " (running)" if s.running else ""
            table.add_row(s.name, s.folder, s.collection, s.schedule, "yes" if s.enabled else "paused",
                          _counts(s.last_run) + state)
        emit(options, {"sources": [s.as_json() for s in found]}, lambda: out.print(table))

    @app.command()
    @shared_options
    def history(options: CliOptions, name: str,
                limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20) -> None:
        """A source's runs: counts, failed files with their reasons, and how long each phase took."""
        with open_services(options, no_worker=True) as services:
            runs = services.web.sources.runs(SYSTEM, name, limit)

        def show() -> None:
            for run in runs:
                print_run(out, run)

        emit(options, {"source": name, "runs": [r.as_json() for r in runs]}, show)

    @app.command()
    @shared_options
    def sync(options: CliOptions, name: str,
             wait: Annotated[bool, typer.Option(
                 "--wait/--no-wait", help="Run it here and report it (default), or only queue it.")] = True) -> None:
        """Bring a source in step now; a run already queued is joined, never doubled."""
        _run(options, name, wait, confirm=False)

    @app.command()
    @shared_options
    def confirm(options: CliOptions, name: str,
                wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Run it here (default), or queue it.")]
                = True) -> None:
        """Confirm a held source's removals: its next run removes the documents whose files are gone."""
        _run(options, name, wait, confirm=True)

    @app.command()
    @shared_options
    def pause(options: CliOptions, name: str) -> None:
        """Stop a source's schedule and watching (`sources sync` still runs it)."""
        _switch(options, name, False)

    @app.command()
    @shared_options
    def resume(options: CliOptions, name: str) -> None:
        """Start a paused source's schedule and watching again."""
        _switch(options, name, True)

    @app.command()
    @shared_options
    def remove(options: CliOptions, name: str) -> None:
        """Forget a source; the documents it brought stay in their collection."""
        with open_services(options, no_worker=True) as services:
            services.web.sources.remove(SYSTEM, name)
        emit(options, {"removed": name}, lambda: out.print(f"removed {name}; its documents stay", highlight=False))

    return app


def _switch(options: CliOptions, name: str, enabled: bool) -> None:
    """Pause or resume a source, and say so."""
    with open_services(options, no_worker=True) as services:
        source = services.web.sources.set_enabled(SYSTEM, name, enabled)
    _show(options, source, f"{name} is on again ({source.schedule})" if enabled else f"{name} is paused")


def _run(options: CliOptions, name: str, wait: bool, confirm: bool) -> None:
    with open_services(options, no_worker=True) as services:
        sources = services.web.sources
        if wait:
            run = sources.run_here(SYSTEM, name, confirm)
            emit(options, {"source": name, "run": run.as_json()}, lambda: print_run(out, run))
            return
        job, new = (sources.confirm(SYSTEM, name), True) if confirm else sources.sync(SYSTEM, name)
    payload: dict[str, Any] = {"source": name, "job": job, "queued": new}
    emit(options, payload, lambda: out.print(
        f"{name}: run queued as job {job}" if new else f"{name}: a run is queued already (job {job})"))
