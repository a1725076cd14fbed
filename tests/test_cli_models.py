"""`run.py models list|add|use` and `run.py advise`, as an admin at the server's shell uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from assistant.audit import SYSTEM
from assistant.audit_events import ModelChosen
from assistant.services import build_services
from assistant.settings import load_settings
from tests.conftest import PROJECT_ROOT
from tests.gguf_files import write_gguf
from ui.cli import build_cli

PACKAGED = "gemma-3-270m-q4_k_m.gguf"


def _cli(*args: str, data_dir: Path, code: int = 0) -> Any:
    result = CliRunner().invoke(build_cli(), [*args, "--data-dir", str(data_dir)])
    assert result.exit_code == code, result.output
    return result


def _listed(data_dir: Path) -> dict[str, Any]:
    listed: dict[str, Any] = json.loads(_cli("models", "list", "--json", "--no-checksums", data_dir=data_dir).stdout)
    return listed


def test_a_fresh_install_lists_the_packaged_gemma_as_a_base_model_with_its_checksum(tmp_path: Path) -> None:
    listed = json.loads(_cli("models", "list", "--json", data_dir=tmp_path / "data").stdout)
    gemma = next(m for m in listed["models"] if m["name"] == PACKAGED)
    assert (gemma["source"], gemma["family"], gemma["has_chat_template"]) == ("packaged", "gemma3", False)
    assert gemma["quantisation"] == "Q4_K_M" and gemma["context_length"] == 32768
    assert gemma["size_bytes"] > 200 * 2**20 and len(gemma["sha256"]) == 64 and gemma["licence"]
    assert {"answering", "answering_model", "problems"} <= listed.keys()
    shown = _cli("models", "list", data_dir=tmp_path / "data").stdout
    assert "base" in shown and "answering now:" in shown


def test_add_refuses_a_text_file_and_copies_a_gguf_into_the_models_folder(tmp_path: Path) -> None:
    data = tmp_path / "data"
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model\n", encoding="utf-8")
    refused = _cli("models", "add", str(notes), data_dir=data, code=1)
    assert "notes.txt is not a GGUF model file" in refused.stderr and "Traceback" not in refused.output
    assert not list((data / "models").glob("*.gguf"))

    tiny = write_gguf(tmp_path / "media" / "tiny-chat.gguf")
    added = json.loads(_cli("models", "add", str(tiny), "--json", data_dir=data).stdout)
    assert added["name"] == "tiny-chat.gguf" and added["has_chat_template"] is True
    assert (data / "models" / "tiny-chat.gguf").read_bytes() == tiny.read_bytes()
    listed = next(m for m in _listed(data)["models"] if m["name"] == "tiny-chat.gguf")
    assert (listed["source"], listed["sha256"]) == ("data-dir", added["sha256"])


def test_use_switches_the_answering_model_for_every_process_and_is_audited(tmp_path: Path, embedder: Any) -> None:
    data = tmp_path / "data"
    _cli("models", "add", str(write_gguf(tmp_path / "tiny-chat.gguf")), data_dir=data)
    assert _listed(data)["answering_model"] != "tiny-chat.gguf"

    used = json.loads(_cli("models", "use", "tiny-chat.gguf", "--json", data_dir=data).stdout)
    assert "tiny-chat.gguf" in used["answering"]
    listed = _listed(data)
    assert listed["answering_model"] == "tiny-chat.gguf" and "tiny-chat.gguf" in listed["answering"]
    assert [m["name"] for m in listed["models"] if m["answering"]] == ["tiny-chat.gguf"]

    services = build_services(load_settings(data_dir=data), embedder=embedder)  # another process's view
    try:
        assert "tiny-chat.gguf" in services.web.runtime.model_label()
        event = services.web.audit.events(SYSTEM, 10, "model_chosen")[0]
        assert (event.user, event.target) == ("cli", "tiny-chat.gguf")
        chosen = event.event
        assert isinstance(chosen, ModelChosen) and (chosen.backend, chosen.source) == ("embedded", "data-dir")
        assert chosen.location == str(data / "models" / "tiny-chat.gguf")
    finally:
        services.close()

    unknown = _cli("models", "use", "no-such-model", data_dir=data, code=1)
    assert "no model called 'no-such-model'" in unknown.stderr and "tiny-chat.gguf" in unknown.stderr


@pytest.mark.slow
def test_advise_on_a_tiny_qa_set_writes_advice_and_resumes(tmp_path: Path) -> None:
    qa = tmp_path / "qa-tiny"
    (qa / "docs").mkdir(parents=True)
    (qa / "docs" / "leave.md").write_text("# Leave\n\nEmployees accrue 1.5 days of paid leave per month.\n")
    row = {"id": "1", "question": "How much paid leave do employees accrue?", "answer": "1.5 days per month",
           "sources": [{"file": "leave.md", "page": None}], "answerable": True, "type": "single"}
    (qa / "qa.jsonl").write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "2"}) + "\n")
    data = tmp_path / "data"

    def advise() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run.py", "advise", str(qa), "--models", PACKAGED, "--limit", "1", "--json",
             "--data-dir", str(data)], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)

    first = advise()
    assert first.returncode == 0, first.stderr[-3000:]
    advice = json.loads(first.stdout)
    assert advice["questions"] == 1 and advice["chosen"] == PACKAGED
    out = data / "advice" / "qa-tiny"
    assert json.loads((out / "advice.json").read_text())["chosen"] == PACKAGED
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
    again = advise()  # the question is answered already: nothing is asked again
    assert again.returncode == 0, again.stderr[-3000:]
    assert len((out / "results.jsonl").read_text().splitlines()) == 1
