"""Enclave's command line: go offline, then build the commands (``ui.cli``) and run the one asked for."""

from __future__ import annotations

from assistant.offline import enforce_offline

enforce_offline()  # before typer pulls in anything that might import a model library

from ui.cli import build_cli  # noqa: E402


def main() -> None:
    """Parse the command line and run one command."""
    build_cli()()


if __name__ == "__main__":
    main()
