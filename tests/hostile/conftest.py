"""The hostile tests reuse the web app fixture of tests/ui (a server per module)."""

from tests.ui.conftest import serve

__all__ = ["serve"]
