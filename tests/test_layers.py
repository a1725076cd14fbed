"""The import contracts in pyproject.toml: layers point one way, and ui never opens storage itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

PACKAGES = ("assistant", "ingest", "storage", "ui")
LAYERS = "Layers point one way: ui -> assistant -> ingest -> storage"
UI_ABOVE_STORAGE = "ui never opens storage, the database or the vector index itself"


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the packages and pyproject.toml under ``root``, as CI runs it."""
    command = [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--no-logo"]
    env = {**os.environ, "PYTHONPATH": str(root)}  # the packages under root, not the installed checkout
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_repository_keeps_its_import_contracts() -> None:
    result = lint_imports(PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{LAYERS} KEPT" in result.stdout
    assert f"{UI_ABOVE_STORAGE} KEPT" in result.stdout


@pytest.mark.parametrize(
    ("module", "added", "contract", "path"),
    [
        ("storage/db.py", "import assistant.errors", LAYERS, "storage.db -> assistant.errors"),
        ("ui/api.py", "import storage.db", UI_ABOVE_STORAGE, "ui.api -> storage.db"),
    ],
)
def test_an_import_against_the_layers_breaks_its_contract(
    tmp_path: Path, module: str, added: str, contract: str, path: str
) -> None:
    for package in PACKAGES:
        shutil.copytree(PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    source = tmp_path / module
    source.write_text(source.read_text() + f"\n{added}\n")

    result = lint_imports(tmp_path)

    assert result.returncode != 0
    assert f"{contract} BROKEN" in result.stdout
    assert path in result.stdout
