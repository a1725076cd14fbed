"""``run.py roots ...``: the server folders admins may ingest from, changed for every running process."""

from __future__ import annotations

import typer

from assistant.audit import SYSTEM
from assistant.ingest_roots import NO_ROOTS
from ui.cli.options import CliOptions, command_group, emit, open_services, out, shared_options


def roots_app() -> typer.Typer:
    """The ``roots`` command group, acting through the same service as the admin page."""
    app = command_group("Server folders admins may ingest from (the web app and `run.py serve` use them at once).")

    @app.command("list")
    @shared_options
    def list_roots(options: CliOptions) -> None:
        """The folders admins may ingest from, with their subfolders."""
        with open_services(options) as services:
            roots = services.web.roots.folders(SYSTEM)
        emit(options, {"roots": roots},
             lambda: out.print("\n".join(roots) if roots else f"no folders: {NO_ROOTS}", highlight=False))

    @app.command()
    @shared_options
    def add(options: CliOptions, folder: str) -> None:
        """Let admins ingest from FOLDER (a full path, no '..' or symbolic links) and its subfolders."""
        with open_services(options) as services:
            path = str(services.web.roots.add(SYSTEM, folder))
        emit(options, {"added": path}, lambda: out.print(f"added {path}: admins may ingest from it now",
                                                         highlight=False))

    @app.command()
    @shared_options
    def remove(options: CliOptions, folder: str) -> None:
        """Stop admins ingesting from FOLDER; what was ingested from it stays."""
        with open_services(options) as services:
            path = str(services.web.roots.remove(SYSTEM, folder))
        emit(options, {"removed": path}, lambda: out.print(f"removed {path}: admins may no longer ingest from it",
                                                           highlight=False))

    return app
