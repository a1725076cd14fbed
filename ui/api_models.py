"""The HTTP API's request and response bodies; FastAPI turns them into the served OpenAPI description.

The ``/v1`` bodies follow OpenAI's Chat Completions API, with Enclave's additions (citations,
sources, refusals, the collections to search) as extra fields that OpenAI clients ignore.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MODEL_ID = "enclave"


class ErrorDetail(BaseModel):
    """What went wrong, in words a person can act on."""

    message: str
    type: str = Field(description="invalid_request_error, authentication_error, permission_error, "
                                  "not_found_error, model_unavailable or server_error.")
    param: str | None = None
    code: str | None = None


class ErrorBody(BaseModel):
    """Every error of the API, in OpenAI's shape."""

    error: ErrorDetail


class ContentPart(BaseModel):
    """A part of a message; only text parts are understood."""

    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessageIn(BaseModel):
    """One message of the conversation the client sends."""

    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class ChatCompletionRequest(BaseModel):
    """A question as OpenAI clients send it; the last user message is the question."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(MODEL_ID, description=f"Only {MODEL_ID!r} (see GET /v1/models).")
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=200)
    stream: bool = Field(False, description="Server-sent events: chunks, then `data: [DONE]`.")
    temperature: float | None = Field(None, description="Accepted for compatibility; the server's setting applies.")
    max_tokens: int | None = Field(None, description="Accepted for compatibility; the server's setting applies.")
    collections: list[str] | None = Field(
        None, max_length=100, description="Enclave: search only these collections (each must be readable); "
                                          "all readable ones when absent.")
    chat_id: int | None = Field(
        None, ge=1, le=2**31 - 1,
        description="Enclave: continue this stored conversation of yours (follow-ups are rewritten against it); "
                    "a new conversation when absent, whose follow-up context is the earlier user and assistant "
                    "turns in `messages`.")
    retrieve_only: bool = Field(
        False, description="Enclave: only find the passages (in `sources`), without the model writing an answer; "
                           "never waits in line for the model.")


class Passage(BaseModel):
    """A retrieved passage, numbered as the answer's [n] markers count."""

    model_config = ConfigDict(extra="allow")
    n: int
    file: str
    page: int | None = None
    heading: str | None = None
    text: str
    collection: str
    document_id: int | None = None
    chunk_id: int | None = None
    kind: str | None = Field(None, description="'cited' by the model, 'attributed' by similarity, or null.")
    support: list[str] = Field(default_factory=list, description="A cited passage's one or two sentences that best "
                               "back the answer, to check it without opening the document; empty for passages "
                               "not cited.")
    url: str | None = Field(None, description="The cited page in the web app's viewer.")


class Quote(BaseModel):
    """A sentence of a retrieved passage that answers the question, quoted as it stands."""

    text: str
    n: int = Field(description="The passage it is from, numbered as the sources and the [n] markers are.")


class Enclave(BaseModel):
    """What Enclave adds to an answer (top level of a response, and of the last streamed chunk)."""

    citations: list[Passage] = Field(default_factory=list, description="The passages the answer relies on.")
    sources: list[Passage] = Field(default_factory=list, description="Every passage handed to the model.")
    refused: bool = Field(False, description="True when the documents do not answer the question.")
    refusal_reason: str | None = None
    quoted: str | None = Field(None, description="Why the answer quotes the documents' sentences instead of the "
                               "model's (it wrote nothing usable, or failed); null when the model's answer stands.")
    chat_id: int | None = None
    message_id: int | None = None
    backend: str | None = Field(None, description="The model that wrote the answer.")
    evidence: list[Quote] = Field(default_factory=list, description="The passages' sentences that best answer the "
                                  "question, found before the model writes (streamed first, in an `evidence` "
                                  "chunk); empty when the question was refused from the evidence.")
    indexing: str | None = Field(None, description="Set while files searched are still being embedded: keyword "
                                 "search alone finds them (e.g. 'still indexing 3 files; answers use keyword search "
                                 "for them'); null when every file is fully indexed.")


class AssistantMessage(BaseModel):
    """The answer's message."""

    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    """The one answer."""

    index: int = 0
    message: AssistantMessage
    finish_reason: str = "stop"


class ChatCompletion(Enclave):
    """A whole answer (``stream`` false)."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str = MODEL_ID
    choices: list[Choice]


class ModelCard(BaseModel):
    """The assistant, as a model OpenAI clients can pick."""

    id: str = MODEL_ID
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "enclave"
    description: str = ""


class ModelList(BaseModel):
    """The models this server answers with."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class IngestRequest(BaseModel):
    """A server folder to ingest into a collection."""

    folder: str = Field(min_length=1, max_length=4096, description="A folder under one of web.ingest_roots.")
    collection: str = Field(min_length=1, max_length=100)
    sync: bool = Field(False, description="Also remove documents whose files are gone.")


class JobStarted(BaseModel):
    """The queued job."""

    job_id: int
    url: str


class JobFile(BaseModel):
    """A file an ingest job has handled."""

    path: str
    outcome: str = Field(description="added, updated, unchanged, renamed or failed.")
    chunks: int
    reason: str = Field("", description="Why the file failed; empty otherwise.")


class Job(BaseModel):
    """An ingest job's progress, as the admin page shows it."""

    id: int
    collection: str
    source: str = Field(description="The folder being ingested.")
    sync: bool = Field(description="Whether documents whose files are gone are removed.")
    started_by: str = Field(description="The user who queued the job.")
    state: str = Field(description="queued, running, done or failed (or another state the job store records).")
    total: int = Field(description="Files found (0 until scanning finished).")
    done: int = Field(description="Files handled so far.")
    attempts: int = Field(description="How many times a worker has started the job.")
    worker: str | None = Field(None, description="The worker holding the job, while it runs.")
    files: list[JobFile] = Field(default_factory=list, description="The latest files handled, oldest first.")
    failures: list[Any] = Field(default_factory=list, description="[path, reason] of files that failed.")
    summary: dict[str, Any] = Field(default_factory=dict)
    error: str | None = None
    started: datetime | None = None
    finished: datetime | None = None


class DocumentOut(BaseModel):
    """A document of a readable collection."""

    id: int
    collection: str
    path: str
    title: str | None
    page_count: int
    chunk_count: int
    ingested_at: datetime
    file_url: str = Field(description="Download the original file.")


class DocumentList(BaseModel):
    """Documents, by collection and path."""

    data: list[DocumentOut]


class Status(BaseModel):
    """What the caller can use; admins also get the corpus figures."""

    user: str
    role: str
    model: str = Field(description="The model that writes answers.")
    collections: list[str] = Field(description="The collections the caller may read.")
    corpus: dict[str, Any] | None = Field(None, description="Admins: documents, chunks, index size per collection.")
