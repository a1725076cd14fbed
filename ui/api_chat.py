"""``/v1``: the assistant behind OpenAI's Chat Completions API, so existing chat front ends and scripts can use it.

A question goes through ``ChatService.ask``, exactly as in the web chat: the same collection
grants, the same answering path, the conversation stored in the caller's chat list. Earlier
turns in ``messages`` carry a follow-up's context, as OpenAI clients send them; with
``chat_id`` the stored conversation does instead. The
answer carries Enclave's citations in extra fields (``ui.api_models.Enclave``).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from itertools import chain
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from assistant.audit import Principal
from assistant.chats import ChatEvent, ChatService, Saved
from assistant.errors import EnclaveError, InvalidInput, NotFoundError
from assistant.events import Evidence, Token, Waiting
from assistant.llm.base import ChatMessage
from assistant.runtime import RuntimeSettings
from assistant.stored_answer import ShownSource
from ui.api_errors import ERRORS, error_response
from ui.api_models import (
    MODEL_ID,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    Choice,
    Enclave,
    ErrorBody,
    ModelCard,
    ModelList,
    Passage,
    Quote,
)
from ui.streaming import ClosingStreamingResponse

PASSAGE_KEYS = ("n", "file", "page", "heading", "text", "score", "span", "collection", "document_id", "chunk_id",
                "kind")
STREAM_DOC = {"text/event-stream": {"schema": {"type": "string"},
                                    "example": 'data: {"object": "chat.completion.chunk", ...}\n\ndata: [DONE]\n\n'}}


def _text(content: str | list[Any] | None, strict: bool = True) -> str:
    """A message's text; ``strict`` refuses parts that are not text, otherwise they are left out."""
    if isinstance(content, list):
        if strict and any(part.type != "text" or part.text is None for part in content):
            raise InvalidInput("messages: only text content parts are understood")
        content = "\n".join(part.text or "" for part in content if part.type == "text")
    if content and "\x00" in content:  # PostgreSQL cannot store it; no question needs it
        raise InvalidInput("messages: a message contains a NUL character")
    return content or ""


def question_of(body: ChatCompletionRequest) -> str:
    """The question: the text of the last user message."""
    users = [m for m in body.messages if m.role == "user"]
    if not users:
        raise InvalidInput("messages: include a user message; the last one is the question")
    return _text(users[-1].content)


def history_of(body: ChatCompletionRequest) -> list[ChatMessage]:
    """The conversation before the question, as OpenAI clients send it: its user and assistant turns.

    Follow-ups ("and what about dental?") are rewritten against it, as in the web chat. System
    messages are not the user's conversation and are left out; the server writes its own prompt.
    """
    last_user = max(i for i, m in enumerate(body.messages) if m.role == "user")
    return [{"role": m.role, "content": _text(m.content, strict=False)} for m in body.messages[:last_user]
            if m.role in ("user", "assistant")]


def passage(item: ShownSource) -> Passage:
    """A stored source as the API shows it, with a link to the cited page."""
    return Passage.model_validate({
        **{key: getattr(item, key) for key in PASSAGE_KEYS},
        "support": item.support,  # cited passages only; empty for the rest, and in answers stored before it
        "url": f"/view/chunk/{item.chunk_id}",
    })


def quotes(evidence: Evidence | None) -> list[Quote]:
    """The evidence sent before the answer, as the API shows it."""
    return [Quote(text=q.text, n=q.n) for q in evidence.quotes] if evidence else []


def enclave_fields(saved: Saved, evidence: Evidence | None = None) -> Enclave:
    """Citations, sources, evidence and the refusal verdict of a stored answer."""
    message = saved.message
    return Enclave(citations=[passage(c) for c in message.citations], sources=[passage(s) for s in message.sources],
                   refused=message.refused, refusal_reason=message.refusal_reason, quoted=message.quoted,
                   chat_id=saved.chat_id, message_id=message.id, backend=message.backend, evidence=quotes(evidence),
                   indexing=message.indexing)


def _chunk(ident: str, created: int, delta: dict[str, Any], finish: str | None = None,
           extra: dict[str, Any] | None = None) -> str:
    body = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **(extra or {})}
    return f"data: {json.dumps(body)}\n\n"


def _error_event(message: str, kind: str) -> str:
    return f"data: {json.dumps({'error': {'message': message, 'type': kind, 'param': None, 'code': None}})}\n\n"


def stream(events: Iterator[ChatEvent]) -> Iterator[str]:
    """Server-sent events: a role chunk, a chunk per token, a last chunk with the citations, ``[DONE]``."""
    ident, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    yield _chunk(ident, created, {"role": "assistant", "content": ""})
    streamed, evidence = "", None
    try:
        for event in events:
            if isinstance(event, Evidence):  # an empty delta with the documents' best sentences, before the answer
                evidence = event
                yield _chunk(ident, created, {}, None, {"evidence": [q.model_dump() for q in quotes(event)]})
            elif isinstance(event, Token):
                streamed += event.text
                yield _chunk(ident, created, {"content": event.text})
            elif isinstance(event, Waiting):  # an empty delta, which OpenAI clients pass over, with the place in line
                yield _chunk(ident, created, {}, None, {"queue": {"ahead": event.ahead, "message": event.detail,
                                                                  "waited_s": round(event.waited_s, 2)}})
            elif isinstance(event, Saved):
                error, answer = event.message.error, event.message.answer
                if error and not event.message.quoted:
                    yield _error_event(f"the model could not answer: {error}", "model_unavailable")
                    continue
                if answer and not streamed.strip():
                    yield _chunk(ident, created, {"content": answer})
                elif event.message.quoted:  # what streamed was the model's, and could not be used
                    yield _chunk(ident, created, {"content": f"\n\n{answer}"})
                yield _chunk(ident, created, {}, "stop", enclave_fields(event, evidence).model_dump(mode="json"))
    except EnclaveError as exc:  # headers are sent: the error travels as an event, as OpenAI's does
        yield _error_event(str(exc), "server_error")
    yield "data: [DONE]\n\n"


def complete(events: Iterator[ChatEvent]) -> Response:
    """The whole answer in one body."""
    evidence, saved = None, None
    for event in events:
        if isinstance(event, Evidence):
            evidence = event
        elif isinstance(event, Saved):
            saved = event
            break
    if saved is None:
        return error_response(500, "the answer was not finished")
    if saved.message.error and not saved.message.quoted:
        return error_response(503, f"the model could not answer: {saved.message.error}")
    completion = ChatCompletion(
        id=f"chatcmpl-{saved.chat_id}-{saved.message.id}", created=int(time.time()),
        choices=[Choice(message=AssistantMessage(content=saved.message.answer))],
        **dict(enclave_fields(saved, evidence)),
    )
    return JSONResponse(completion.model_dump(mode="json"), headers={"cache-control": "no-store"})


def chat_router(chats: ChatService, runtime: RuntimeSettings) -> APIRouter:
    """Routes ``GET /v1/models``, ``GET /v1/models/{id}`` and ``POST /v1/chat/completions``."""
    router = APIRouter(tags=["chat"], responses=ERRORS)

    def card() -> ModelCard:
        return ModelCard(description=f"Answers from your documents; written by {runtime.model_label()}")

    @router.get("/v1/models", response_model=ModelList, summary="The model this server answers as")
    def models() -> ModelList:
        return ModelList(data=[card()])

    @router.get("/v1/models/{model_id}", response_model=ModelCard, summary="One model")
    def model(model_id: str) -> ModelCard:
        if model_id != MODEL_ID:
            raise NotFoundError(f"there is no model {model_id!r}: this server answers as {MODEL_ID!r}")
        return card()

    @router.post(
        "/v1/chat/completions", response_model=ChatCompletion, summary="Answer a question from the documents",
        responses={200: {"content": STREAM_DOC, "description": "The answer (JSON), or its stream when "
                         "`stream` is true."},
                   503: {"model": ErrorBody, "description": "The model could not answer (JSON requests)."}},
    )
    def completions(body: ChatCompletionRequest, request: Request) -> Response:
        if body.model != MODEL_ID:
            raise NotFoundError(f"there is no model {body.model!r}: this server answers as {MODEL_ID!r}")
        principal: Principal = request.state.principal
        question = question_of(body)
        history = history_of(body) if body.chat_id is None else None  # a stored chat brings its own
        events = chats.ask(principal, body.chat_id, question, body.collections, body.retrieve_only, history)
        first = next(events, None)  # the question and grants are checked before anything is sent
        answer = chain([first] if first is not None else [], events)
        if body.stream:
            return ClosingStreamingResponse(stream(answer), media_type="text/event-stream",
                                            headers={"cache-control": "no-store", "x-accel-buffering": "no"})
        return complete(answer)

    return router

