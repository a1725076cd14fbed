"""Enclave's command line: one typer app built from a module per command group.

``--data-dir``, ``--config`` and ``--json`` are taken by every command and group, before or after
its name (``run.py --data-dir D users add ...`` and ``run.py users add ... --data-dir D`` are the
same); the one nearest the command wins, and each group passes what it was given on in ``ctx.obj``.
"""

from __future__ import annotations

import typer

from ui.cli.answers import register_answer_commands
from ui.cli.corpus import register_corpus_commands
from ui.cli.desktop import register_desktop_command
from ui.cli.indexes import register_index_commands
from ui.cli.install import register_install_commands
from ui.cli.models import register_model_commands
from ui.cli.options import command_group
from ui.cli.quality import quality_app
from ui.cli.roots import roots_app
from ui.cli.serving import register_serving_commands
from ui.cli.sources import sources_app
from ui.cli.users import users_app


def build_cli() -> typer.Typer:
    """The ``run.py`` app with every command registered."""
    app = command_group("Enclave: a private document assistant.", add_completion=False)
    register_corpus_commands(app)  # ingest, status, reindex
    register_answer_commands(app)  # ask, eval
    register_serving_commands(app)  # serve, worker
    register_desktop_command(app)  # desktop: a window of its own
    app.add_typer(users_app(), name="users")
    app.add_typer(quality_app(), name="quality")  # quality export
    app.add_typer(sources_app(), name="sources")  # folders kept in step: add, list, sync, pause, ...
    app.add_typer(roots_app(), name="roots")  # roots list/add/remove
    register_install_commands(app)  # copy-database, backup, restore
    register_index_commands(app)  # copy-index
    register_model_commands(app)  # models list/add/use, advise
    return app
