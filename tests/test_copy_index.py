"""`run.py copy-index`: an install's index moved into PostgreSQL (and back), answering with the same sources."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.retrieval import Retriever
from ui.cli import build_cli

FILES = {
    "handbook.md": "# Handbook\n\n## Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n\n"
                   "## Security\n\nBadges must be worn inside the Redmond office at all times.\n",
    "dental.txt": "The dental plan covers two cleanings per year and orthodontics for children under 18.\n",
    "parking.txt": "Parking permits are issued by the facilities desk on the ground floor every Monday.\n",
}
QUESTIONS = ["How many days of paid leave do I get?", "Who issues parking permits?", "Does dental cover braces?"]


def _sources(services: Any) -> list[list[str]]:
    retriever = Retriever(services.corpus, services.settings.retrieval)
    return [[p.chunk.file for p in retriever.retrieve(q, top_k=3).passages] for q in QUESTIONS]


@pytest.mark.slow
def test_copy_index_to_postgresql_and_back_answers_with_the_same_sources(
    make_services: Any, pgvector_url: str, isolated_paths: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENCLAVE_DATABASE_URL", pgvector_url)
    share = tmp_path / "share"
    share.mkdir()
    for name, text in FILES.items():
        (share / name).write_text(text, encoding="utf-8")
    in_process = make_services()
    in_process.ingest.ingest(share)
    expected = _sources(in_process)
    cli = build_cli()

    copied = CliRunner().invoke(cli, ["--json", "copy-index", "--to", "postgresql", "--sample", "5"])
    assert copied.exit_code == 0, copied.output
    report = json.loads(copied.stdout.strip().splitlines()[-1])
    assert report["agrees"] and report["chunks"] == in_process.corpus.status()["chunks"]
    assert report["bm25"]["same_top"] == 1.0
    on_postgresql = make_services(retrieval={"index_backend": "postgresql"})
    assert _sources(on_postgresql) == expected
    assert on_postgresql.corpus.status()["index_bytes"] > 0

    shutil.rmtree(isolated_paths / "index")  # the in-process index is gone: copy it back from the database
    back = CliRunner().invoke(cli, ["copy-index", "--to", "in-process", "--sample", "5"])
    assert back.exit_code == 0, back.output
    assert 'retrieval.index_backend = "in-process"' in back.stdout
    assert _sources(make_services()) == expected


def test_copy_index_names_the_backends_it_knows(isolated_paths: Path) -> None:
    refused = CliRunner().invoke(build_cli(), ["copy-index", "--to", "elasticsearch"])
    assert refused.exit_code == 1 and "--to must be one of in-process, postgresql" in refused.output
