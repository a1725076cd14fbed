"""The backend registry, immutable settings, admin changes seen by every process, and the old model closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from assistant.audit import SYSTEM
from assistant.default_model import default_name
from assistant.errors import InvalidInput
from assistant.live_settings import SAVED_KEY
from assistant.llm.backends import BACKENDS
from assistant.llm.factory import AnsweringModel
from assistant.settings import GenerationSettings, load_settings
from tests import parrot_backend
from tests.parrot_backend import ParrotChatModel

FLIGHTS = "# Travel\n\nEmployees fly economy class on flights under six hours. Business class needs approval.\n"


@pytest.fixture(scope="module", autouse=True)
def parrot() -> Iterator[None]:
    """Register the parrot backend the documented way: one line in the registry."""
    BACKENDS.append(parrot_backend.SPEC)
    yield
    BACKENDS.remove(parrot_backend.SPEC)


def with_travel(make_services: Any, tmp_path: Path, **overrides: Any) -> Any:
    (tmp_path / "hr").mkdir(exist_ok=True)
    (tmp_path / "hr" / "travel.md").write_text(FLIGHTS)
    services = make_services(data_dir=tmp_path / "data", **overrides)
    services.ingest.ingest(tmp_path / "hr", "hr")
    return services


def test_settings_are_immutable_and_changed_by_copy(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    with pytest.raises(ValidationError):
        settings.retrieval.top_k = 3  # type: ignore[misc]
    changed = settings.changed("retrieval", top_k=3)
    assert changed.retrieval.top_k == 3 and settings.retrieval.top_k == 5


def test_the_backend_name_and_sections_are_checked_against_the_registry(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="must be one of auto, ollama, openai, embedded, parrot"):
        load_settings(data_dir=tmp_path, generation={"backend": "llamafile"})
    with pytest.raises(ValidationError, match=r"generation\.llamafile is not a setting nor a registered backend"):
        load_settings(data_dir=tmp_path, generation={"llamafile": {"url": "x"}})
    settings = load_settings(data_dir=tmp_path, generation={"backend": "parrot", "parrot": {"voice": "loud"}})
    assert settings.generation.section("parrot") == parrot_backend.ParrotSettings(voice="loud")  # type: ignore[call-arg]


def test_the_held_model_is_closed_when_the_settings_change(tmp_path: Path) -> None:
    holder = AnsweringModel(tmp_path)
    loud = GenerationSettings(backend="parrot", parrot={"voice": "loud"})  # type: ignore[call-arg]
    first = holder.get(loud)
    assert holder.get(loud) is first, "the same settings keep the same model"

    soft = loud.model_copy(update={"parrot": parrot_backend.ParrotSettings(voice="soft")})  # type: ignore[call-arg]
    second = holder.get(soft)

    assert isinstance(first.model, ParrotChatModel) and first.model.closed
    assert second.model.name == "Parrot (soft)" and not second.model.closed  # type: ignore[attr-defined]
    assert holder.held(loud) is None and second.model.closed, "a model held for other settings is released"  # type: ignore[attr-defined]


def test_a_switch_to_the_embedded_model_closes_the_old_one_and_answers_one_at_a_time(
    make_services: Any, tmp_path: Path
) -> None:
    services = with_travel(make_services, tmp_path, generation={"backend": "parrot", "server_concurrency": 3})
    answers, runtime = services.answers, services.web.runtime

    answer = list(answers.ask("Which class do employees fly on short flights?"))[-1].answer
    assert answer.backend == "Parrot (plain)" and "economy class" in answer.text and answer.citations
    parrot = answers.chat_model()
    assert isinstance(parrot, ParrotChatModel) and answers.queue.slots == 3

    runtime.change(SYSTEM, "embedded", 4, {})
    assert runtime.model_label().startswith(f"embedded {default_name()}"), "the label follows before a question"
    assert parrot.closed, "the parrot model is closed once the settings no longer name it"
    assert answers.chat_model().name.startswith("Embedded") and answers.queue.slots == 1
    assert runtime.current().backend == "embedded" and runtime.current().top_k == 4


def test_an_admin_change_in_one_process_is_used_by_another_within_the_check_interval(
    make_services: Any, tmp_path: Path
) -> None:
    """Two services on one database stand for two processes (the PostgreSQL test runs real ones)."""
    quick = {"jobs": {"settings_check_s": 0.2}, "generation": {"backend": "parrot"}}
    first = with_travel(make_services, tmp_path, **quick)
    second = make_services(data_dir=tmp_path / "data", **quick)
    question = "Which class do employees fly on short flights?"
    assert list(second.answers.ask(question))[-1].answer.backend == "Parrot (plain)"

    first.web.runtime.change(SYSTEM, "parrot", 2, {"parrot": {"voice": "loud"}})
    time.sleep(0.3)

    answer = list(second.answers.ask(question))[-1].answer
    assert answer.backend == "Parrot (loud)" and len(answer.retrieved) == 1, "top-k 2, one passage per page"
    assert second.web.runtime.model_label() == "Parrot (loud)"
    assert second.settings.generation.backend == "parrot", "the configured settings object is never changed"


def test_settings_saved_in_the_earlier_flat_form_are_still_read(make_services: Any, tmp_path: Path) -> None:
    services = make_services(data_dir=tmp_path / "data")
    services.corpus.store.set_meta(SAVED_KEY, '{"backend": "ollama", "ollama_host": "http://10.0.0.5:11434", '
                                              '"ollama_model": "qwen3:4b", "top_k": 7, "openai_url": "", '
                                              '"openai_model": ""}')
    services.web.runtime.load_saved()
    assert services.web.runtime.model_label() == "Ollama qwen3:4b at http://10.0.0.5:11434"
    assert services.web.runtime.current().top_k == 7


def test_a_change_missing_what_the_backend_needs_is_refused(make_services: Any, tmp_path: Path) -> None:
    services = make_services(data_dir=tmp_path / "data", generation={"parrot": {"voice": ""}})
    runtime = services.web.runtime
    with pytest.raises(InvalidInput, match=r"answering with Parrot .* needs Parrot voice"):
        runtime.change(SYSTEM, "parrot", 5, {"parrot": {"voice": " "}})
    with pytest.raises(InvalidInput, match="Ollama host is a URL such as"):
        runtime.change(SYSTEM, "auto", 5, {"ollama": {"hosts": "10.0.0.5"}})
    with pytest.raises(InvalidInput, match="must be one of auto, ollama, openai, embedded, parrot"):
        runtime.change(SYSTEM, "llamafile", 5, {})
    assert runtime.current().backend == "auto", "nothing was saved"
