"""A model pulled into an Ollama store answers in-process, by its Ollama name, with no Ollama server.

The store is laid out as Ollama lays it out (manifests naming sha256 blobs); the model blob is
the real packaged Gemma 3 270M GGUF.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import ConfigError
from assistant.llm.embedded import EmbeddedChatModel, packaged_gguf
from assistant.llm.ollama_store import MODEL_LAYER, manifest_path, model_blob, pulled_models
from assistant.settings import EmbeddedModelSettings

MODELS_DIR = Path.home() / ".cache" / "enclave-test-models"  # shared with test_llm.py: assembled once


def _pull(store: Path, name_parts: tuple[str, ...], blob_source: Path | None, digest: str) -> None:
    """Write what `ollama pull` leaves behind: the blob under its digest, and a manifest naming it."""
    blobs = store / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    if blob_source is not None:
        blob = blobs / digest.replace(":", "-")
        try:
            os.link(blob_source, blob)
        except OSError:  # another file system: a link to the file serves llama.cpp the same bytes
            blob.symlink_to(blob_source)
    manifest = store.joinpath("manifests", *name_parts)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({
        "schemaVersion": 2,
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:" + "0" * 64},
        "layers": [
            {"mediaType": MODEL_LAYER, "digest": digest, "size": 1},
            {"mediaType": "application/vnd.ollama.image.template", "digest": "sha256:" + "1" * 64, "size": 1},
        ],
    }), encoding="utf-8")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    gguf = packaged_gguf(MODELS_DIR)
    digest = "sha256:" + hashlib.file_digest(gguf.open("rb"), "sha256").hexdigest()
    root = tmp_path_factory.mktemp("ollama") / "models"
    _pull(root, ("registry.ollama.ai", "library", "gemma3", "270m"), gguf, digest)
    _pull(root, ("registry.ollama.ai", "team", "gone", "q4"), None, "sha256:" + "2" * 64)  # its blob was deleted
    return root


@pytest.fixture(scope="module")
def from_store(store: Path) -> Iterator[EmbeddedChatModel]:
    settings = EmbeddedModelSettings(ollama_model="gemma3:270m", ollama_store=str(store), n_ctx=2048)  # type: ignore[call-arg]
    model = EmbeddedChatModel(settings, MODELS_DIR)
    yield model
    model.close()


def test_a_model_in_the_ollama_store_answers_by_its_name(from_store: EmbeddedChatModel) -> None:
    question = [{"role": "user", "content": "Name one colour."}]
    answer = "".join(from_store.stream(question, max_tokens=12, temperature=0.1))  # type: ignore[arg-type]
    assert answer.strip()
    assert from_store.name == "Embedded gemma3:270m from the Ollama store (llama.cpp)"


def test_names_are_read_as_ollama_reads_them(store: Path) -> None:
    assert manifest_path(store, "gemma3") == store / "manifests/registry.ollama.ai/library/gemma3/latest"
    assert manifest_path(store, "team/gone:q4") == store / "manifests/registry.ollama.ai/team/gone/q4"
    assert manifest_path(store, "host:5000/team/m:v1") == store / "manifests/host:5000/team/m/v1"
    assert pulled_models(store) == ["gemma3:270m", "team/gone:q4"]
    for bad in ("", "../../etc/passwd", "a/b/c/d:e", "gemma3:.."):
        with pytest.raises(ConfigError, match="no Ollama model name"):
            manifest_path(store, bad)


def test_a_model_not_pulled_says_which_are(store: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        model_blob("llama3:8b", store)
    message = str(raised.value)
    assert "generation.embedded.ollama_model 'llama3:8b' is not in the Ollama store" in message
    assert "gemma3:270m" in message and "ollama pull llama3:8b" in message


def test_a_manifest_whose_blob_is_gone_says_to_pull_again(store: Path) -> None:
    with pytest.raises(ConfigError, match="which is missing: pull the model again"):
        model_blob("team/gone:q4", store)


def test_a_gguf_path_and_an_ollama_model_together_are_refused(store: Path, tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    settings = EmbeddedModelSettings(gguf_path=str(gguf), ollama_model="gemma3:270m", ollama_store=str(store))  # type: ignore[call-arg]
    with pytest.raises(ConfigError, match="not both"):
        EmbeddedChatModel(settings, tmp_path)


def test_warm_up_picks_and_loads_the_answering_model_before_any_question(make_services: Any, store: Path) -> None:
    """`run.py serve` warms up at start: the status shows who answers before anyone has asked."""
    services = make_services(generation={"backend": "embedded", "embedded": {
        "ollama_model": "gemma3:270m", "ollama_store": str(store), "n_ctx": 2048}})
    assert services.answers.chosen_model_name is None
    services.answers.warm_up()
    expected = "Embedded gemma3:270m from the Ollama store (llama.cpp)"
    assert services.answers.chosen_model_name == expected
    assert services.web.runtime.model_label() == expected
