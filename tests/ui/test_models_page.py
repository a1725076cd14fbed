"""The admin Models tab: the catalogue, "use this model", the last advice with its plot; admins only."""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from assistant.advice import Advice, ModelReport, QuestionResult
from assistant.audit import SYSTEM
from assistant.models.catalogue import list_models
from tests.fake_ollama import FakeOllama
from tests.gguf_files import write_gguf
from tests.ui.conftest import World, build_world
from tests.ui.settings_form import call, components_by_elem_id, page_config, save_settings
from tests.ui.test_api import signed_in
from ui.cli import build_cli

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=")


@pytest.fixture(scope="module")
def world(embedder: Any, tmp_path_factory: pytest.TempPathFactory, serve: Any) -> Iterator[World]:
    root = tmp_path_factory.mktemp("models-page")
    with FakeOllama() as fake:
        built = build_world(root, embedder, fake, {}, [])
        data = built.services.settings.data_dir
        write_gguf(data / "models" / "tiny-chat.gguf")
        write_gguf(data / "models" / "tiny-base.gguf", chat_template=None)
        _write_advice(built, advised="tiny-chat.gguf")
        serve(built)
        yield built
        built.services.close()


def _write_advice(world: World, advised: str) -> None:
    """An advice.json and plot as `run.py advise` leaves them in DATA_DIR/advice/<QA set>."""
    settings = world.services.settings
    local = [m for m in list_models(settings, checksums=False).models if m.source == "data-dir"]
    reports = [ModelReport.of(m, [QuestionResult(m.key, "1", True, refused=False, token_f1=0.5, containment=0.5,
                                                 first_token_ms=900.0)]) for m in local]
    chosen = next(r for r in reports if r.model.name == advised)
    advice = Advice("contoso-hr", 1, 0.03, reports, chosen, f"{advised} is advised")
    folder = settings.data_dir / "advice" / "contoso-hr"
    folder.mkdir(parents=True)
    (folder / "advice.json").write_text(json.dumps(advice.to_json()), encoding="utf-8")
    (folder / "advice.png").write_bytes(PNG)


def _event(config: dict[str, Any], elem_id: str) -> dict[str, Any]:
    """The event a component (by elem_id) triggers."""
    component = components_by_elem_id(config)[elem_id]["id"]
    return next(d for d in config["dependencies"] if any(t[0] == component for t in d["targets"]))


def _shown(client: httpx.Client, elem_id: str, data: list[Any] | None = None) -> dict[str, Any]:
    """Press a button of the Models tab; what the tab then shows, by elem_id."""
    config = page_config(client)
    event = _event(config, elem_id)
    done = call(client, event["id"], data or [])
    assert done["success"], done
    names = {c["id"]: c["props"].get("elem_id") for c in config["components"]}
    return {names[i]: v for i, v in zip(event["outputs"], done["output"]["data"], strict=True)}


def _answering(client: httpx.Client) -> str:
    described: str = client.get("/v1/models").json()["data"][0]["description"]
    return described


def test_admins_see_the_catalogue_and_the_last_advice_with_its_plot(world: World) -> None:
    with signed_in(world, "admin") as admin:
        shown = _shown(admin, "models-refresh")
    table = shown["models-table"]
    for expected in ("gemma-3-270m-q4_k_m.gguf", "tiny-chat.gguf", "tiny-base.gguf", "chat template", "base",
                     "packaged", "data-dir", "apache-2.0"):
        assert expected in table
    assert "Ollama gemma3:270m" in shown["models-answering"]
    choices = [label for label, _ in shown["model-choice"]["choices"]]
    assert "tiny-chat.gguf (data-dir)" in choices
    advice = shown["advice"]
    assert "contoso-hr" in advice and "Advised model: <b>tiny-chat.gguf</b>" in advice
    assert '<img src="data:image/png;base64,' + base64.b64encode(PNG).decode() in advice


def test_use_this_model_switches_what_every_client_is_answered_by(world: World) -> None:
    with signed_in(world, "admin") as admin, signed_in(world, "alice") as alice:
        config = page_config(admin)
        choices = _shown(admin, "models-refresh")["model-choice"]["choices"]
        base_key = next(key for label, key in choices if label.startswith("tiny-base.gguf"))
        used = call(admin, _event(config, "use-model")["id"], [base_key])
        assert used["success"], used
        assert "tiny-base.gguf" in _answering(alice)
        table = _shown(admin, "models-refresh")["models-table"]
        answering = [row for row in re.findall(r"<tr>(.*?)</tr>", table) if row.endswith("<td>yes</td>")]
        assert len(answering) == 1 and "tiny-base.gguf" in answering[0]

        advised = call(admin, _event(config, "use-advised")["id"], [])
        assert advised["success"], advised
        assert "tiny-chat.gguf" in _answering(alice)
        events = world.services.web.audit.events(SYSTEM, 20, "model_chosen")
        assert [(e.user, e.target) for e in events[:2]] == [("admin", "tiny-chat.gguf"),
                                                                  ("admin", "tiny-base.gguf")]


def test_models_use_at_the_shell_reaches_the_running_app(world: World) -> None:
    data = world.services.settings.data_dir
    result = CliRunner().invoke(build_cli(), ["models", "use", "tiny-base.gguf", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 10  # each process looks for saved settings every jobs.settings_check_s
    with signed_in(world, "alice") as alice:
        while "tiny-base.gguf" not in _answering(alice):
            assert time.monotonic() < deadline, _answering(alice)
            time.sleep(0.2)


def test_a_plain_user_is_refused_the_models_tab_as_every_admin_tab(world: World) -> None:
    with signed_in(world, "admin") as admin:
        event = _event(page_config(admin), "models-refresh")
    with signed_in(world, "alice") as alice:
        assert alice.get("/admin/").status_code == 403
        assert alice.get("/admin/config").status_code == 403
        body = {"data": [], "event_data": None, "fn_index": event["id"], "trigger_id": None, "session_hash": "x1"}
        assert alice.post("/admin/gradio_api/queue/join", json=body).status_code == 403


def test_saving_the_settings_tab_afterwards_keeps_the_chosen_model(world: World) -> None:
    with signed_in(world, "admin") as admin, signed_in(world, "alice") as alice:
        used = _shown(admin, "use-model", ["tiny-chat.gguf"])
        assert "tiny-chat.gguf" in used["models-answering"]
        saved = save_settings(admin, {"top-k": 7})
        assert saved["success"], saved
        assert world.services.web.runtime.current().top_k == 7
        assert "tiny-chat.gguf" in _answering(alice)
