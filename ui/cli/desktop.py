"""``run.py desktop``: Enclave in its own window for one person, with the folders they choose."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.desktop import desktop_username, follow_folders
from assistant.source_scheduler import SourceScheduler
from ui.cli.options import CliOptions, err, open_services, out, refuse_json, shared_options


def register_desktop_command(app: typer.Typer) -> None:
    """Add ``desktop`` to the app."""

    @app.command()
    @shared_options
    def desktop(
        options: CliOptions,
        folder: Annotated[list[Path] | None, typer.Option(
            "--folder", metavar="FOLDER",
            help="A folder of your documents to follow (repeatable; remembered for next time).")] = None,
    ) -> None:
        """Open Enclave in its own window, signed in, on this machine only; closing the window stops it."""
        from ui.desktop import run_desktop, window_problem  # Gradio and Qt take seconds to import

        refuse_json(options, "desktop", "it runs until its window is closed")
        problem = window_problem()
        if problem:
            err.print(f"[red]error:[/red] {problem}", highlight=False)
            raise typer.Exit(1)
        # The one ingest worker of this data dir: a second window on it (or a `run.py worker`) is refused.
        with open_services(options, serving=True) as services, services.corpus.sole_worker():
            found = follow_folders(services.web.sources, folder or ())
            for source in found:
                out.print(f"following {source.folder} ({source.collection})", highlight=False)
            if not found:
                out.print("no folders yet: `run.py desktop --folder PATH` adds one", highlight=False)
            services.web.jobs.start_worker()  # the folders' runs, and jobs left from last time
            scheduler = SourceScheduler(services.web.sources, services.settings.sources)
            scheduler.start()
            try:
                run_desktop(services, desktop_username(), out.print)
            finally:
                scheduler.stop()
