"""``run.py copy-database``, ``backup`` and ``restore``: moving and safeguarding a whole install."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from assistant.backup import BackupReport, copy_to_database, create_backup, display_url, restore_backup, unpack_backup
from assistant.errors import EnclaveError
from assistant.settings import CONFIG_FILE_NAME, Settings

LoadSettings = Callable[[Path | None, Path | None], Settings]
DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder holding all state (default ~/.local/share/enclave).")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default DATA_DIR/enclave.toml).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


class TableProgress:
    """A progress bar per table while rows are copied."""

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


@contextmanager
def _progress(err: Console, as_json: bool) -> Iterator[TableProgress | None]:
    if as_json or not err.is_terminal:
        yield None
        return
    with TableProgress(err) as bar:
        yield bar


@contextmanager
def _errors(err: Console) -> Iterator[None]:
    try:
        yield
    except EnclaveError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


def _print_report(out: Console, verb: str, report: BackupReport) -> None:
    rows = sum(report.rows.values())
    out.print(f"{verb} {report.path}: {rows} rows in {len(report.rows)} tables ({report.db_method}), "
              f"{len(report.index_versions)} index versions, {report.files} files, {report.bytes / 2**20:.1f} MiB",
              highlight=False)
    for note in report.notes:
        out.print(f"[yellow]note:[/yellow] {note}", highlight=False)


def _emit(out: Console, as_json: bool, payload: dict[str, Any], render: Callable[[], None]) -> None:
    if as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        render()


def register_admin_commands(app: typer.Typer, load: LoadSettings, out: Console, err: Console) -> None:
    """Add the three commands to the ``run.py`` app; ``load`` builds settings from --data-dir and --config."""

    @app.command("copy-database")
    def copy_database(
        to: Annotated[str, typer.Option("--to", help="Empty target, e.g. postgresql+psycopg://enclave@db/enclave.")],
        as_json: JsonFlag = False,
        data_dir: DataDir = None,
        config: ConfigFile = None,
    ) -> None:
        """Copy every table of this install's database into an empty one (SQLite to PostgreSQL)."""
        settings = load(data_dir, config)
        with _errors(err), _progress(err, as_json) as bar:
            rows = copy_to_database(settings, to, bar)
        target = display_url(to)
        _emit(out, as_json, {"target": target, "rows": rows}, lambda: out.print(
            f"copied {sum(rows.values())} rows in {len(rows)} tables into {target}; row counts verified.\n"
            f"Now set database_url = \"{target}\" in {settings.data_dir / CONFIG_FILE_NAME} "
            "(or ENCLAVE_DATABASE_URL) and restart Enclave. The old database is unchanged.",
            highlight=False, soft_wrap=True))

    @app.command()
    def backup(
        dest: Annotated[Path, typer.Argument(help="Archive to write (a new file, e.g. enclave-2024-05-01.tar.gz).")],
        as_json: JsonFlag = False,
        data_dir: DataDir = None,
        config: ConfigFile = None,
    ) -> None:
        """Write one archive of the database, live indexes, settings file and uploads (safe while running)."""
        settings = load(data_dir, config)
        with _errors(err), _progress(err, as_json) as bar:
            report = create_backup(settings, dest, config, bar)
        _emit(out, as_json, report.as_json(), lambda: _print_report(out, "backed up into", report))

    @app.command()
    def restore(
        src: Annotated[Path, typer.Argument(help="An archive written by `run.py backup`.")],
        force: Annotated[bool, typer.Option("--force", help="Replace a non-empty data dir and database.")] = False,
        as_json: JsonFlag = False,
        data_dir: DataDir = None,
        config: ConfigFile = None,
    ) -> None:
        """Check every member of a backup, then restore it into an empty data dir (and database)."""
        with _errors(err), unpack_backup(src) as unpacked:
            # The archived settings file becomes this install's; ENCLAVE_* variables still override it.
            settings = load(data_dir, config or unpacked.settings_file)
            with _progress(err, as_json) as bar:
                report = restore_backup(unpacked, settings, force, bar)
        _emit(out, as_json, report.as_json(), lambda: _print_report(out, "restored into", report))
