"""``run.py copy-database``, ``backup`` and ``restore``: moving and safeguarding a whole install."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from assistant.backup import BackupReport, copy_to_database, create_backup, display_url, restore_backup, unpack_backup
from assistant.settings import CONFIG_FILE_NAME
from ui.cli.options import CliOptions, emit, enclave_errors, err, out, settings_or_exit, shared_options
from ui.cli.terminal import TableProgress


@contextmanager
def _progress(options: CliOptions) -> Iterator[TableProgress | None]:
    if options.as_json or not err.is_terminal:
        yield None
        return
    with TableProgress(err) as bar:
        yield bar


def _print_report(verb: str, report: BackupReport) -> None:
    rows = sum(report.rows.values())
    out.print(f"{verb} {report.path}: {rows} rows in {len(report.rows)} tables ({report.db_method}), "
              f"{len(report.index_versions)} index versions, {report.files} files, {report.bytes / 2**20:.1f} MiB",
              highlight=False)
    for note in report.notes:
        out.print(f"[yellow]note:[/yellow] {note}", highlight=False)


def register_install_commands(app: typer.Typer) -> None:
    """Add ``copy-database``, ``backup`` and ``restore`` to the app."""

    @app.command("copy-database")
    @shared_options
    def copy_database(
        options: CliOptions,
        to: Annotated[str, typer.Option("--to", help="Empty target, e.g. postgresql+psycopg://enclave@db/enclave.")],
    ) -> None:
        """Copy every table of this install's database into an empty one (SQLite to PostgreSQL)."""
        settings = settings_or_exit(options.data_dir, options.config)
        with enclave_errors(), _progress(options) as bar:
            rows = copy_to_database(settings, to, bar)
        target = display_url(to)
        emit(options, {"target": target, "rows": rows}, lambda: out.print(
            f"copied {sum(rows.values())} rows in {len(rows)} tables into {target}; row counts verified.\n"
            f"Now set database_url = \"{target}\" in {settings.data_dir / CONFIG_FILE_NAME} "
            "(or ENCLAVE_DATABASE_URL) and restart Enclave. The old database is unchanged.",
            highlight=False, soft_wrap=True))

    @app.command()
    @shared_options
    def backup(
        options: CliOptions,
        dest: Annotated[Path, typer.Argument(help="Archive to write (a new file, e.g. enclave-2024-05-01.tar.gz).")],
    ) -> None:
        """Write one archive of the database, live indexes, settings file and uploads (safe while running)."""
        settings = settings_or_exit(options.data_dir, options.config)
        with enclave_errors(), _progress(options) as bar:
            report = create_backup(settings, dest, options.config, bar)
        emit(options, report.as_json(), lambda: _print_report("backed up into", report))

    @app.command()
    @shared_options
    def restore(
        options: CliOptions,
        src: Annotated[Path, typer.Argument(help="An archive written by `run.py backup`.")],
        force: Annotated[bool, typer.Option("--force", help="Replace a non-empty data dir and database.")] = False,
    ) -> None:
        """Check every member of a backup, then restore it into an empty data dir (and database)."""
        with enclave_errors(), unpack_backup(src) as unpacked:
            # The archived settings file becomes this install's; ENCLAVE_* variables still override it.
            settings = settings_or_exit(options.data_dir, options.config or unpacked.settings_file)
            with _progress(options) as bar:
                report = restore_backup(unpacked, settings, force, bar)
        emit(options, report.as_json(), lambda: _print_report("restored into", report))
