"""Conversations: asking within the collections a user may read, saving answers, follow-ups, feedback.

Every method takes the acting principal and checks, inside, that the chat is theirs and that
the collections are readable. A stored answer whose sources lie in a collection the user can
no longer read is shown withheld, never replayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from assistant import audit_events
from assistant.access import AccessService
from assistant.answer import AnswerService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput, NotFoundError
from assistant.events import Answer, Done, Sources, Status, Token
from assistant.excerpts import context_after, context_before
from assistant.llm.base import ChatMessage
from assistant.retrieval import Passage
from storage.chat_store import ChatRecord, ChatStore, MessageRecord
from storage.library import LibraryStore

CONTEXT_CHARS = 160
WITHHELD = "This answer drew on documents you can no longer read, so it is withheld."
MAX_QUESTION = 4000


@dataclass(frozen=True)
class SourcesReady:
    """The passages found for the question, as dicts the page shows (numbered from 1)."""

    sources: list[dict[str, Any]]


@dataclass(frozen=True)
class Saved:
    """The answer is finished and stored: the chat it belongs to and the message as ``messages`` returns it."""

    chat_id: int
    message: dict[str, Any]


ChatEvent = Status | Token | SourcesReady | Saved


def checked_history(history: list[ChatMessage]) -> list[ChatMessage]:
    """A client's earlier turns, refused when a question among them is longer than a question may be.

    Follow-ups are rewritten with the earlier questions (``assistant.followup``), so an earlier
    turn must not bring in what the question limit keeps out of the question itself.
    """
    for turn in history:
        if turn.get("role") == "user" and len(turn.get("content") or "") > MAX_QUESTION:
            raise InvalidInput(f"an earlier question in the conversation is longer than {MAX_QUESTION} characters")
    return list(history)


class ChatService:
    """Per-user conversations over the answering service."""

    def __init__(self, answers: AnswerService, access: AccessService, store: ChatStore, library: LibraryStore,
                 audit: AuditLog) -> None:
        self.answers = answers
        self.access = access
        self.store = store
        self.library = library
        self.audit = audit

    def chats(self, principal: Principal) -> list[ChatRecord]:
        """The principal's conversations, most recent first."""
        return self.store.chats(principal.id) if principal.id is not None else []

    def chat(self, principal: Principal, chat_id: int) -> ChatRecord:
        """One of the principal's conversations; anyone else's is reported as not found."""
        chat = self.store.chat(chat_id)
        if chat is None or chat.user_id != principal.id:
            raise NotFoundError("there is no such conversation")
        return chat

    def messages(self, principal: Principal, chat_id: int) -> list[dict[str, Any]]:
        """A conversation's questions and answers, with what is no longer readable withheld."""
        self.chat(principal, chat_id)
        readable = set(self.access.readable(principal))
        return [self._shown(m, readable) for m in self.store.messages(chat_id)]

    def rename(self, principal: Principal, chat_id: int, title: str) -> None:
        """Give a conversation a new title."""
        self.chat(principal, chat_id)
        if not title.strip():
            raise InvalidInput("a title cannot be empty")
        self.store.update(chat_id, title=title.strip()[:200])

    def delete(self, principal: Principal, chat_id: int) -> None:
        """Delete a conversation and its messages."""
        self.chat(principal, chat_id)
        self.store.delete(chat_id)
        self.audit.record(principal, audit_events.ChatDeleted(chat_id))

    def ask(self, principal: Principal, chat_id: int | None, question: str,
            collections: list[str] | None = None, retrieve_only: bool = False,
            history: list[ChatMessage] | None = None) -> Iterator[ChatEvent]:
        """Answer a question (a follow-up when ``chat_id`` is given) and store it; the last event is ``Saved``.

        With ``retrieve_only`` the passages are found and stored without asking the model.
        ``history`` is the conversation so far for a new chat whose client keeps it (the API);
        a stored chat's own messages are used when ``chat_id`` is given.
        """
        question = question.strip()
        if not question or len(question) > MAX_QUESTION:
            raise InvalidInput(f"ask a question of 1 to {MAX_QUESTION} characters")
        chosen = self.access.choose(principal, collections)
        history = self._history(principal, chat_id) if chat_id is not None else checked_history(history or [])
        if chat_id is None:
            assert principal.id is not None, "the command line has no conversations"
            chat_id = self.store.create(principal.id, question[:60], chosen)
        else:
            self.store.update(chat_id, collections=chosen)
        self.audit.record(principal, audit_events.QuestionAsked(chat_id, question=question, collections=chosen))
        sources: list[dict[str, Any]] | None = None  # the answer's passages, as built for the page
        for event in self.answers.ask(question, history=history, collections=chosen, retrieve_only=retrieve_only):
            if isinstance(event, Sources):
                sources = self._sources(event.passages)
                yield SourcesReady(sources)
            elif isinstance(event, Done):
                yield self._save(principal, chat_id, event.answer, sources)
            else:
                yield event

    def feedback(self, principal: Principal, message_id: int, helpful: bool, comment: str = "") -> None:
        """Rate an answer in one of the principal's conversations."""
        message = self.store.message(message_id)
        if message is None:
            raise NotFoundError("there is no such answer")
        self.chat(principal, message.chat_id)
        self.store.add_feedback(message, principal.id or 0, helpful, comment.strip()[:2000])
        self.audit.record(principal, audit_events.Feedback(message_id, helpful=helpful))

    def feedback_log(self, actor: Principal, limit: int = 50) -> list[dict[str, Any]]:
        """The newest ratings with what they rate (admins only)."""
        require_admin(actor)
        return self.store.feedback(limit)

    def _history(self, principal: Principal, chat_id: int) -> list[ChatMessage]:
        history: list[ChatMessage] = []
        for m in self.messages(principal, chat_id):
            if not m["withheld"]:
                history += [{"role": "user", "content": m["question"]}, {"role": "assistant", "content": m["answer"]}]
        return history

    def _sources(self, passages: list[Passage]) -> list[dict[str, Any]]:
        """Passages as the page shows them, with the page text around each passage."""
        where = self.library.locations([p.chunk.id for p in passages])
        pages = self.library.page_texts([(loc.document_id, loc.page_ordinal) for loc in where.values()])
        shown = []
        for n, p in enumerate(passages, 1):
            item = {**p.as_json(n), "chunk_id": p.chunk.id, "document_id": p.chunk.document_id, "kind": None,
                    "before": "", "marked": p.chunk.text, "after": ""}
            loc = where.get(p.chunk.id)
            text = pages.get((loc.document_id, loc.page_ordinal)) if loc else None
            if loc and text is not None:
                item["before"] = context_before(text, loc.char_start, CONTEXT_CHARS)  # from a sentence or word
                item["marked"] = text[loc.char_start : loc.char_end]  # the span, exactly as the viewer marks it
                item["after"] = context_after(text, loc.char_end, CONTEXT_CHARS)
            shown.append(item)
        return shown

    def _save(self, principal: Principal, chat_id: int, answer: Answer,
              sources: list[dict[str, Any]] | None = None) -> Saved:
        """Store the answer; ``sources`` are its passages (``answer.retrieved``) as already shown, when they were."""
        sources = [dict(s) for s in sources] if sources is not None else self._sources(answer.retrieved)
        cited = {c.n: c for c in answer.citations}
        for item in sources:
            citation = cited.get(item["n"])
            item["kind"] = citation.kind if citation else None
            if citation:  # the sentences that back the answer, shown under it
                item["support"] = answer.support(citation)
        payload = {
            "sources": sources, "citations": [s for s in sources if s["kind"]],
            "sentences": [{"text": s.text, "status": s.status, "passages": s.passages} for s in answer.sentences],
            "refused": answer.refused, "refusal_reason": answer.refusal_reason, "error": answer.error,
            "quoted": answer.quoted,
            "timings": answer.as_json()["timings"],
            "searched": answer.query if answer.query != answer.question else None,  # follow-up or typos rewritten
        }
        message_id = self.store.add_message(chat_id, answer.question, answer.text, answer.backend, payload)
        record = MessageRecord(message_id, chat_id, 0, answer.question, answer.text, answer.backend, payload)
        return Saved(chat_id, self._shown(record, set(self.access.readable(principal))))

    @staticmethod
    def _shown(message: MessageRecord, readable: set[str]) -> dict[str, Any]:
        payload = message.payload
        withheld = any(s.get("collection") not in readable for s in payload.get("sources", []))
        shown: dict[str, Any] = {"id": message.id, "question": message.question, "backend": message.backend,
                                 "withheld": withheld}
        if withheld:
            return {**shown, "answer": WITHHELD, "sources": [], "citations": [], "sentences": [],
                    "refused": False, "error": None}
        return {**shown, "answer": message.answer, **payload}
