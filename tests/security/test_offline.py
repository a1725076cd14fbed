"""Startup air-gap checks: offline switches before any model library, local NLTK/tiktoken data, no analytics."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import pytest

from assistant.errors import ConfigError
from assistant.offline import OFFLINE_ENV, assert_offline, llama_index_static, offline_problems
from tests.conftest import PROJECT_ROOT

MODEL_LIBRARIES = ("torch", "transformers", "sentence_transformers", "huggingface_hub", "llama_index.core", "nltk")


@pytest.mark.slow
def test_cli_goes_offline_before_model_libraries_and_reads_nltk_and_tiktoken_locally(
    tmp_path: Path, record_figure: Callable[[str, object], None]
) -> None:
    share = tmp_path / "share"
    share.mkdir()
    (share / "leave.md").write_text("# Leave\n\nEmployees accrue 1.5 days of paid leave. Ask HR for more.\n")
    hostile = tmp_path / "hostile-data"  # where llama-index would download to if it used the caller's folders
    hostile.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_ENV}
    env.update(NLTK_DATA=str(hostile), TIKTOKEN_CACHE_DIR=str(hostile))
    out = tmp_path / "audit.json"
    command = [sys.executable, "-m", "tests.security.audit_runner", str(out), "ingest", str(share),
               "--data-dir", str(tmp_path / "data"), "--json"]
    run = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout.splitlines()[-1])["documents"] == 1
    audit = json.loads(out.read_text())
    for library in MODEL_LIBRARIES:
        seen = audit["imports"][library]  # the environment at the moment it was first imported
        assert seen["HF_HUB_OFFLINE"] == "1" and seen["TRANSFORMERS_OFFLINE"] == "1", library
        assert seen["NLTK_DATA"] != str(hostile) and seen["TIKTOKEN_CACHE_DIR"] != str(hostile), library
    static = str(llama_index_static())
    data_files = audit["data_files"]
    assert any("nltk_cache/corpora/stopwords" in f for f in data_files)
    assert any("tiktoken_cache/" in f for f in data_files)
    assert all(f.startswith(static) for f in data_files), data_files
    assert list(hostile.iterdir()) == []
    assert audit["loaded"]["stopwords"] > 100 and audit["loaded"]["punkt"] == 2 and audit["loaded"]["tiktoken"] == 2
    record_figure("model libraries imported after offline mode was set", f"{len(audit['imports'])}/"
                  f"{len(audit['imports'])}")
    record_figure("NLTK/tiktoken files read, all from llama-index's bundled folder", len(data_files))
    record_figure("network calls (connect/sendto/DNS/urllib) by `run.py ingest`", len(audit["network"]))
    assert audit["network"] == []


def test_the_test_session_itself_is_offline() -> None:
    assert offline_problems() == []


@pytest.mark.parametrize(("key", "value", "named"), [
    ("HF_HUB_OFFLINE", "0", "HF_HUB_OFFLINE"),
    ("GRADIO_ANALYTICS_ENABLED", "True", "GRADIO_ANALYTICS_ENABLED"),
    ("NLTK_DATA", "/nonexistent", "would download"),
    ("TIKTOKEN_CACHE_DIR", "/nonexistent", "would download"),
])
def test_startup_refuses_an_online_environment_and_names_the_switch(
    monkeypatch: pytest.MonkeyPatch, key: str, value: str, named: str
) -> None:
    monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="not air-gapped") as raised:
        assert_offline()
    assert named in str(raised.value) and key in str(raised.value)


def test_startup_refuses_gradio_analytics_or_a_share_link() -> None:
    assert_offline([gr.Blocks()])  # analytics default to the environment, which says off
    chatty = gr.Blocks()  # not Blocks(analytics_enabled=True): that looks up api.gradio.app at once
    chatty.analytics_enabled = True
    with pytest.raises(ConfigError, match="analytics"):
        assert_offline([chatty])
    shared = gr.Blocks()
    shared.share = True
    with pytest.raises(ConfigError, match="public share link"):
        assert_offline([shared])


def test_gradio_spelling_of_a_switch_still_counts_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "True")  # Gradio rewrites it so when analytics are off
    assert offline_problems() == []
