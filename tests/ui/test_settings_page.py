"""The admin Settings tab is built from the backend registry: a backend added there is a choice, with its fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from assistant.llm.backends import BACKENDS
from tests import parrot_backend
from tests.fake_ollama import FakeOllama, FakeOllamaScript
from tests.ui.conftest import World, build_world
from tests.ui.settings_form import components_by_elem_id, page_config, save_settings
from tests.ui.test_api import signed_in

QUESTION = "Which class do employees fly on flights under six hours?"


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    BACKENDS.append(parrot_backend.SPEC)  # the one registry line docs/extending.md asks for
    root = tmp_path_factory.mktemp("settings-page")
    (root / "hr").mkdir()
    (root / "hr" / "travel.md").write_text(
        "# Travel\n\nEmployees fly economy class on flights under six hours. Business class needs approval.\n")
    try:
        with FakeOllama(FakeOllamaScript(reply="Employees fly economy class [1].")) as fake:
            built = build_world(root, embedder, fake, {"hr": root / "hr"}, ["hr"])
            serve(built)
            yield built
            built.services.close()
    finally:
        BACKENDS.remove(parrot_backend.SPEC)


def ask(client: httpx.Client) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={
        "model": "enclave", "messages": [{"role": "user", "content": QUESTION}], "collections": ["hr"]})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_registered_backend_is_a_choice_with_its_fields_and_answers_once_chosen(world: World) -> None:
    with signed_in(world, "admin") as admin, signed_in(world, "alice") as alice:
        form = components_by_elem_id(page_config(admin))
        assert ["Parrot (repeats the best passage)", "parrot"] in form["backend"]["props"]["choices"]
        assert form["parrot-voice"]["props"]["label"] == "Parrot voice"
        assert {"ollama-hosts", "ollama-model", "openai-base-urls", "openai-model"} <= form.keys()
        assert ask(alice)["backend"].startswith("Ollama gemma3:270m")

        saved = save_settings(admin, {"backend": "parrot", "parrot-voice": "squawk"})
        assert saved["success"], saved

        answer = ask(alice)
        assert answer["backend"] == "Parrot (squawk)" and answer["citations"]
        assert "economy class" in answer["choices"][0]["message"]["content"]
        described = alice.get("/v1/models").json()["data"][0]["description"]
        assert described.endswith("written by Parrot (squawk)")


def test_a_change_the_backend_cannot_take_is_shown_and_nothing_is_saved(world: World) -> None:
    with signed_in(world, "admin") as admin:
        before = world.services.web.runtime.current()
        refused = save_settings(admin, {"backend": "openai", "openai-base-urls": "gpu1:8000/v1"})
        assert not refused["success"]
        assert "is a URL such as http://10.0.0.7:8000/v1" in str(refused["output"].get("error"))
        assert world.services.web.runtime.current() == before
