"""What every command shares: --data-dir, --config and --json (before or after its name), the settings and
services they open, errors turned into a message and an exit code, and output as text or one JSON object."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console

from assistant.errors import EnclaveError
from assistant.services import Services, build_services
from assistant.settings import Settings, load_settings

out = Console()  # rich looks up sys.stdout when it writes, so these follow redirection and test runners
err = Console(stderr=True, soft_wrap=True)

DataDir = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder holding all state (default ~/.local/share/enclave).")
]
ConfigFile = Annotated[
    Path | None, typer.Option("--config", help="TOML settings file (default DATA_DIR/enclave.toml).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


@dataclass(frozen=True)
class CliOptions:
    """The options in force for a command, carried down the command tree in ``ctx.obj``."""

    data_dir: Path | None = None
    config: Path | None = None
    as_json: bool = False


def _in_force(ctx: typer.Context, data_dir: Path | None, config: Path | None, as_json: bool) -> CliOptions:
    """The options given here, else those given before this command's name; passed on to its subcommands."""
    before = ctx.obj if isinstance(ctx.obj, CliOptions) else CliOptions()
    ctx.obj = replace(before, data_dir=data_dir or before.data_dir, config=config or before.config,
                      as_json=as_json or before.as_json)
    return ctx.obj


def shared_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give a command or group ``--json``, ``--data-dir`` and ``--config``, handed to it as ``options``.

    Typer reads a command's options from its signature, so the wrapper shows typer the command's own
    parameters plus these three (and the context that carries what was given before the command's
    name); the command itself takes one ``options: CliOptions`` instead of four parameters repeated
    in every command, and no command can forget one of them.
    """
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]
    shared = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
              inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=JsonFlag),
              inspect.Parameter("data_dir", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=DataDir),
              inspect.Parameter("config", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=ConfigFile)]

    @functools.wraps(command)
    def with_options(*args: Any, ctx: typer.Context, as_json: bool, data_dir: Path | None, config: Path | None,
                     **kwargs: Any) -> None:
        command(*args, options=_in_force(ctx, data_dir, config, as_json), **kwargs)

    parameters = [*own, *shared]
    with_options.__signature__ = inspect.Signature(parameters, return_annotation=None)  # type: ignore[attr-defined]
    with_options.__annotations__ = {p.name: p.annotation for p in parameters}
    return with_options


def command_group(help: str, **typer_settings: Any) -> typer.Typer:
    """A typer app for a group of commands that takes the shared options before its commands' names too.

    Its callback hands what was given there on to the commands (``ctx.obj``); ``help`` is the group's
    ``--help`` text, and ``typer_settings`` go to ``typer.Typer`` as they are.
    """
    app = typer.Typer(no_args_is_help=True, help=help, **typer_settings)

    @app.callback()
    @shared_options
    def group_options(options: CliOptions) -> None:
        """The options given before a command's name, in force for it unless given again after it."""

    return app


def refuse_json(options: CliOptions, command: str, why: str) -> None:
    """Refuse ``--json`` for a command that prints no JSON, so that no script reads its text as JSON."""
    if options.as_json:
        raise typer.BadParameter(f"`{command}` has no JSON output: {why}", param_hint="'--json'")


def settings_or_exit(data_dir: Path | None, config: Path | None) -> Settings:
    """Settings from the data dir and config file; a bad or missing file is one message and exit code 2."""
    try:
        return load_settings(data_dir=data_dir, config_file=config)
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc
    except FileNotFoundError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc


@contextmanager
def enclave_errors() -> Iterator[None]:
    """Turn an Enclave error into one red line on stderr and exit code 1 (no traceback)."""
    try:
        yield
    except EnclaveError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from exc


@contextmanager
def open_services(options: CliOptions, serving: bool = False, no_worker: bool = False) -> Iterator[Services]:
    """Build services for one command, close them after it, and translate Enclave errors into exit code 1.

    An app process serving beside a `run.py worker` (``no_worker`` or ``jobs.in_process_worker =
    false``) runs no jobs and only reads the index versions the worker writes.
    """
    services = None
    try:
        with enclave_errors():
            settings = settings_or_exit(options.data_dir, options.config)
            if no_worker:
                settings = settings.changed("jobs", in_process_worker=False)
            services = build_services(settings, index_writer=not (serving and not settings.jobs.in_process_worker))
            yield services
    finally:
        if services is not None:
            services.close()


def emit(options: CliOptions, payload: dict[str, Any], render: Callable[[], None]) -> None:
    """Print ``payload`` as one JSON line with ``--json``, else call ``render`` to print it for people."""
    if options.as_json:
        sys.stdout.write(json.dumps(payload) + "\n")
    else:
        render()
