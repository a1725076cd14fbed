"""``run.py serve`` and ``worker``: the web app, and the process that runs queued ingest jobs and sources' schedules."""

from __future__ import annotations

from typing import Annotated

import typer

from assistant.source_scheduler import SourceScheduler
from ui.cli.options import CliOptions, open_services, out, refuse_json, shared_options


def register_serving_commands(app: typer.Typer) -> None:
    """Add ``serve`` and ``worker`` to the app."""

    @app.command()
    @shared_options
    def serve(
        options: CliOptions,
        no_browser: Annotated[bool, typer.Option("--no-browser", help="Do not open a browser (servers).")] = False,
        host: Annotated[str | None, typer.Option(help="Address to listen on (default web.host).")] = None,
        port: Annotated[int | None, typer.Option(help="Port to listen on (default web.port).")] = None,
        no_worker: Annotated[bool, typer.Option(
            "--no-worker", help="Run no ingest jobs here: `run.py worker` runs them (several app processes).")] = False,
    ) -> None:
        """Start the web app; prints its address and opens a browser on desktops."""
        from ui.server import serve as run_server  # Gradio takes seconds to import: only when serving

        refuse_json(options, "serve", "it serves until stopped")
        with open_services(options, serving=True, no_worker=no_worker) as services:
            web = services.settings.web
            services.settings = services.settings.changed("web", host=host or web.host, port=port or web.port)
            scheduler = None
            if services.settings.jobs.in_process_worker:
                services.web.jobs.start_worker()  # jobs queued before a restart carry on
                services.web.directory.start_periodic_sync()  # one sync per job runner, not per app process
                scheduler = SourceScheduler(services.web.sources, services.settings.sources)
                scheduler.start()
            try:
                run_server(services, not no_browser, out.print)
            finally:
                if scheduler is not None:
                    scheduler.stop()

    @app.command()
    @shared_options
    def worker(options: CliOptions) -> None:
        """Run queued ingest jobs, the one writer of index versions, beside `serve --no-worker` app processes."""
        import logging
        import signal

        refuse_json(options, "worker", "it runs jobs until stopped")
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop like Ctrl-C: the running job is queued again
        with open_services(options) as services, services.corpus.sole_worker():
            jobs = services.web.jobs
            scheduler = SourceScheduler(services.web.sources, services.settings.sources)
            scheduler.start()  # sources' schedules and watched folders queue runs here
            out.print(f"Ingest worker {jobs.worker_name} is waiting for jobs (Ctrl-C stops it)")
            services.web.directory.start_periodic_sync()
            try:
                jobs.run_worker()
            except KeyboardInterrupt:
                out.print("Ingest worker stopped")
            finally:
                scheduler.stop()
