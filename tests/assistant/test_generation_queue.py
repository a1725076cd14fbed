"""Questions wait in line for the model, first come first served, seeing their place; over real HTTP to a slow model."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from assistant.events import Done, Stage, Status, Token, Waiting
from tests.fake_ollama import FakeOllama, FakeOllamaScript

DOCS = {
    "dental.md": "# Dental\n\nThe dental plan covers two cleanings per year and orthodontics for children under 18.\n",
    "vision.md": "# Vision\n\nThe vision plan covers one eye exam per year and 150 dollars toward frames.\n",
    "travel.md": "# Travel\n\nEconomy class is booked for flights under six hours. Business class needs approval "
    "from a vice president.\n",
    "leave.md": "# Leave\n\nEmployees get 25 days of paid leave per year, plus public holidays.\n",
}
QUESTIONS = [
    "How many dental cleanings per year does the dental plan cover?",
    "How much does the vision plan pay toward frames?",
    "Which class is booked for flights under six hours?",
    "How many days of paid leave do employees get?",
]
REPLY = "The documents say so [1]. " + "More words follow here " * 3  # about 15 pieces


@dataclass
class Asker:
    """One user asking in a thread, recording what they saw and when."""

    services: Any
    question: str
    stop_after_tokens: int | None = None
    give_up_when_waiting: bool = False
    stop: threading.Event = field(default_factory=threading.Event)
    events: list[tuple[float, Any]] = field(default_factory=list)
    in_line: threading.Event = field(default_factory=threading.Event)
    generating: threading.Event = field(default_factory=threading.Event)
    ended_at: float = 0.0

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        tokens = 0
        for event in self.services.answers.ask(self.question):  # leaving the loop closes the generator
            self.events.append((time.monotonic(), event))
            if isinstance(event, Waiting) and event.ahead:
                self.in_line.set()
                if self.give_up_when_waiting and self.stop.is_set():  # seen at the next place report
                    break
            elif isinstance(event, Status) and event.stage is Stage.GENERATING:
                self.generating.set()
            elif isinstance(event, Token):
                tokens += 1
                if self.stop_after_tokens is not None and tokens >= self.stop_after_tokens and self.stop.is_set():
                    break
        self.ended_at = time.monotonic()

    def aheads(self) -> list[int]:
        return [e.ahead for _, e in self.events if isinstance(e, Waiting)]

    def answer(self) -> Any:
        done = [e for _, e in self.events if isinstance(e, Done)]
        assert done, f"{self.question!r} got no answer: {self.events}"
        return done[0].answer

    def started_generating(self) -> float:
        return next(t for t, e in self.events if isinstance(e, Status) and e.stage is Stage.GENERATING)

    def last_token(self) -> float:
        """When the model's last piece arrived (citing and attributing after it need no model)."""
        return max(t for t, e in self.events if isinstance(e, Token))


@pytest.fixture
def slow_model() -> Iterator[FakeOllama]:
    with FakeOllama(FakeOllamaScript(reply=REPLY, token_delay_s=0.08)) as server:
        yield server


def _services(make_services: Any, tmp_path: Path, model: FakeOllama, **generation: Any) -> Any:
    share = tmp_path / "share"
    share.mkdir()
    for name, text in DOCS.items():
        (share / name).write_text(text, encoding="utf-8")
    built = make_services(generation={"backend": "ollama", "ollama": {"hosts": [model.url]}, **generation})
    built.ingest.ingest(share, collection="hr")
    return built


def _asked(model: FakeOllama) -> list[str]:
    """The questions the model server was asked, in the order their requests arrived."""
    return [next(q for q in QUESTIONS if q in r.body["messages"][-1]["content"]) for r in model.chat_requests()]


def _wait(event: threading.Event, what: str) -> None:
    assert event.wait(20), f"timed out waiting until {what}"


def test_questions_wait_first_come_first_served_and_see_their_place_fall_to_zero(
    make_services: Any, tmp_path: Path, slow_model: FakeOllama
) -> None:
    services = _services(make_services, tmp_path, slow_model, server_concurrency=1)
    askers = [Asker(services, q) for q in QUESTIONS]
    threads = [askers[0].start()]
    _wait(askers[0].generating, "the first question reaches the model")
    for asker in askers[1:]:  # each one joins the line only once the one before is in it
        threads.append(asker.start())
        _wait(asker.in_line, f"{asker.question!r} is in line")
    for thread in threads:
        thread.join(60)

    assert _asked(slow_model) == QUESTIONS, "the model answered in arrival order"
    assert askers[0].aheads() == [], "the first question never waited"
    for place, asker in enumerate(askers[1:], 1):
        aheads = asker.aheads()
        assert aheads[0] == place and aheads[-1] == 0, f"{asker.question!r} saw {aheads}"
        assert aheads == sorted(aheads, reverse=True), "a place in line only ever falls"
        assert asker.answer().error is None and asker.answer().text
        assert asker.answer().timings["queue_wait_ms"] > 0
    spans = sorted((a.started_generating(), a.last_token()) for a in askers)
    assert all(end <= next_start for (_, end), (next_start, _) in pairwise(spans)), \
        "with one slot, one answer is written at a time"
    assert services.answers.queue.load() == (0, 0)


def test_two_slots_let_two_answers_be_written_at_once(
    make_services: Any, tmp_path: Path, slow_model: FakeOllama
) -> None:
    services = _services(make_services, tmp_path, slow_model, server_concurrency=2)
    askers = [Asker(services, q) for q in QUESTIONS[:3]]
    threads = [askers[0].start(), askers[1].start()]
    _wait(askers[0].generating, "the first answer starts")
    _wait(askers[1].generating, "the second answer starts beside it")
    threads.append(askers[2].start())
    _wait(askers[2].in_line, "the third question is in line")
    for thread in threads:
        thread.join(60)
    assert askers[0].aheads() == [] and askers[1].aheads() == []
    assert askers[2].aheads()[0] == 1 and askers[2].aheads()[-1] == 0
    assert askers[2].started_generating() >= min(askers[0].last_token(), askers[1].last_token())


def test_a_question_waiting_too_long_is_told_the_model_is_busy_and_keeps_its_sources(
    make_services: Any, tmp_path: Path, slow_model: FakeOllama
) -> None:
    slow_model.script.token_delay_s = 0.4  # the first answer takes about six seconds
    services = _services(make_services, tmp_path, slow_model, server_concurrency=1, queue_wait_s=0.6)
    first = Asker(services, QUESTIONS[0])
    second = Asker(services, QUESTIONS[1])
    threads = [first.start()]
    _wait(first.generating, "the first question reaches the model")
    asked_at = time.monotonic()
    threads.append(second.start())
    threads[1].join(10)
    waited = second.ended_at - asked_at

    answer = second.answer()
    assert answer.error and "busy" in answer.error and "try again" in answer.error
    assert any(p.chunk.file == "vision.md" for p in answer.retrieved), "the sources are still shown"
    assert 0.6 <= waited < 3.0, f"told after {waited:.1f} s, not left hanging"
    assert second.aheads() and second.aheads()[0] == 1
    threads[0].join(30)
    assert _asked(slow_model) == [QUESTIONS[0]], "the busy question never reached the model"
    assert services.answers.queue.load() == (0, 0)


def test_callers_who_leave_free_their_place_and_the_model(
    make_services: Any, tmp_path: Path, slow_model: FakeOllama
) -> None:
    slow_model.script.token_delay_s = 0.4  # a whole answer takes about six seconds
    services = _services(make_services, tmp_path, slow_model, server_concurrency=1)
    writing = Asker(services, QUESTIONS[0], stop_after_tokens=2)
    leaving = Asker(services, QUESTIONS[1], give_up_when_waiting=True)
    staying = Asker(services, QUESTIONS[2])
    threads = [writing.start()]
    _wait(writing.generating, "the first answer is being written")
    threads.append(leaving.start())
    _wait(leaving.in_line, "the second question is in line")
    threads.append(staying.start())
    _wait(staying.in_line, "the third question is in line")
    leaving.stop.set()  # the second caller closes the page while in line
    threads[1].join(10)
    deadline = time.monotonic() + 5
    while staying.aheads()[-1] != 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert staying.aheads()[:2] == [2, 1], "the one who left no longer counts ahead"

    writing.stop.set()  # the first caller closes the stream mid-answer
    threads[0].join(10)
    threads[2].join(30)
    assert staying.started_generating() - writing.ended_at < 1.0, "the model is free as soon as the caller leaves"
    assert staying.answer().error is None and staying.answer().text
    assert _asked(slow_model) == [QUESTIONS[0], QUESTIONS[2]], "the one who left never reached the model"
    assert services.answers.queue.load() == (0, 0)


def test_retrieve_only_questions_never_wait_for_the_model(
    make_services: Any, tmp_path: Path, slow_model: FakeOllama
) -> None:
    slow_model.script.token_delay_s = 0.4
    services = _services(make_services, tmp_path, slow_model, server_concurrency=1)
    writing = Asker(services, QUESTIONS[0])
    thread = writing.start()
    _wait(writing.generating, "an answer is being written")
    started = time.monotonic()
    events = list(services.answers.ask(QUESTIONS[1], retrieve_only=True))
    took = time.monotonic() - started
    assert not any(isinstance(e, Waiting) for e in events)
    assert any(p.chunk.file == "vision.md" for p in events[-1].answer.retrieved)
    assert not writing.ended_at, f"retrieval ({took:.2f} s) finished while the model was still busy"
    thread.join(30)
