"""Conversations: asking within the collections a user may read, saving answers, follow-ups, feedback.

Every method takes the acting principal and checks, inside, that the chat is theirs and that
the collections are readable. A stored answer whose sources lie in a collection the user can
no longer read is shown withheld, never replayed.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from assistant import audit_events
from assistant.access import AccessService, choose_among
from assistant.answer import AnswerService
from assistant.audit import AuditLog, Principal, require_admin
from assistant.errors import InvalidInput, NotFoundError
from assistant.events import Answer, Done, Evidence, Sources, Status, Token
from assistant.excerpts import context_after, context_before
from assistant.llm.base import ChatMessage
from assistant.retrieval import Passage
from assistant.stored_answer import MarkedSentence, ShownMessage, ShownSource, StoredAnswer
from storage.chat_store import ChatRecord, ChatStore, MessageRecord
from storage.library import LibraryStore

CONTEXT_CHARS = 160
WITHHELD = "This answer drew on documents you can no longer read, so it is withheld."
MAX_QUESTION = 4000


@dataclass(frozen=True)
class Conversation:
    """A conversation as its owner may see it now, read once for a page or a question.

    ``chat`` is None for a conversation not stored yet; ``readable`` are the collections the
    owner may read; ``messages`` are the turns so far, withheld where no longer readable.
    """

    chat: ChatRecord | None
    readable: list[str]
    messages: list[ShownMessage]

    def history(self) -> list[ChatMessage]:
        """The turns a follow-up is rewritten against: every one not withheld."""
        history: list[ChatMessage] = []
        for m in self.messages:
            if not m.withheld:
                history += [{"role": "user", "content": m.question}, {"role": "assistant", "content": m.answer}]
        return history


@dataclass(frozen=True)
class SourcesReady:
    """The passages found for the question, as the page shows them (numbered from 1)."""

    sources: list[ShownSource]


@dataclass(frozen=True)
class Saved:
    """The answer is finished and stored: its chat, the message as ``messages`` shows it, and the conversation now."""

    chat_id: int
    message: ShownMessage
    conversation: Conversation


ChatEvent = Status | Evidence | Token | SourcesReady | Saved


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

    def conversation(self, principal: Principal, chat_id: int | None) -> Conversation:
        """A conversation of the principal's (a new one when ``chat_id`` is None) with what they may read."""
        chat = self.chat(principal, chat_id) if chat_id is not None else None
        readable = self.access.readable(principal)
        if chat is None:
            return Conversation(None, readable, [])
        allowed = set(readable)
        return Conversation(chat, readable, [self._shown(m, allowed) for m in self.store.messages(chat.id)])

    def messages(self, principal: Principal, chat_id: int) -> list[ShownMessage]:
        """A conversation's questions and answers, with what is no longer readable withheld."""
        return self.conversation(principal, chat_id).messages

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

    def ask(self, principal: Principal, chat: int | Conversation | None, question: str,
            collections: list[str] | None = None, retrieve_only: bool = False,
            history: list[ChatMessage] | None = None) -> Iterator[ChatEvent]:
        """Answer a question (a follow-up in ``chat``, a chat id or the conversation as already read) and store it.

        The last event is ``Saved``. With ``retrieve_only`` the passages are found and stored
        without asking the model. ``history`` is the conversation so far for a new chat whose
        client keeps it (the API); a stored chat's own messages are used otherwise.
        """
        question = question.strip()
        if not question or len(question) > MAX_QUESTION:
            raise InvalidInput(f"ask a question of 1 to {MAX_QUESTION} characters")
        known = chat if isinstance(chat, Conversation) else self.conversation(principal, chat)
        if known.chat is not None and known.chat.user_id != principal.id:
            raise NotFoundError("there is no such conversation")
        chosen = choose_among(known.readable, collections)
        record = self._record(principal, known, question, chosen)
        history = known.history() if known.chat is not None else checked_history(history or [])
        self.audit.record(principal, audit_events.QuestionAsked(record.id, question=question, collections=chosen))
        sources: list[ShownSource] | None = None  # the answer's passages, as built for the page
        for event in self.answers.ask(question, history=history, collections=chosen, retrieve_only=retrieve_only):
            if isinstance(event, Sources):
                sources = self._sources(event.passages)
                yield SourcesReady(sources)
            elif isinstance(event, Done):
                message = self._save(record.id, event.answer, set(known.readable), sources)
                yield Saved(record.id, message, Conversation(record, known.readable, [*known.messages, message]))
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

    def _record(self, principal: Principal, known: Conversation, question: str, chosen: list[str]) -> ChatRecord:
        """The chat the question belongs to, created for a new conversation, searching ``chosen`` from now on."""
        if known.chat is not None:
            self.store.update(known.chat.id, collections=chosen)
            return replace(known.chat, collections=chosen)
        assert principal.id is not None, "the command line has no conversations"
        created = self.store.chat(self.store.create(principal.id, question[:60], chosen))
        assert created is not None, "a chat just created is there"
        return created

    def _sources(self, passages: list[Passage]) -> list[ShownSource]:
        """Passages as the page shows them, with the page text around each passage."""
        where = self.library.locations([p.chunk.id for p in passages])
        pages = self.library.page_texts([(loc.document_id, loc.page_ordinal) for loc in where.values()])
        shown = []
        for n, p in enumerate(passages, 1):
            item: dict[str, Any] = {**p.as_json(n), "chunk_id": p.chunk.id, "document_id": p.chunk.document_id,
                                    "marked": p.chunk.text}
            loc = where.get(p.chunk.id)
            text = pages.get((loc.document_id, loc.page_ordinal)) if loc else None
            if loc and text is not None:
                item["before"] = context_before(text, loc.char_start, CONTEXT_CHARS)  # from a sentence or word
                item["marked"] = text[loc.char_start : loc.char_end]  # the span, exactly as the viewer marks it
                item["after"] = context_after(text, loc.char_end, CONTEXT_CHARS)
            shown.append(ShownSource.model_validate(item))
        return shown

    def _save(self, chat_id: int, answer: Answer, readable: set[str],
              sources: list[ShownSource] | None = None) -> ShownMessage:
        """Store the answer; ``sources`` are its passages (``answer.retrieved``) as already shown, when they were."""
        cited = {c.n: c for c in answer.citations}
        used = []
        for source in sources if sources is not None else self._sources(answer.retrieved):
            citation = cited.get(source.n)  # the sentences that back the answer are shown under it
            used.append(source.model_copy(update={"kind": citation.kind, "support": answer.support(citation)}
                                          if citation else {"kind": None}))
        stored = StoredAnswer(
            sources=used, sentences=[MarkedSentence.of(s) for s in answer.sentences],
            refused=answer.refused, refusal_reason=answer.refusal_reason, error=answer.error, quoted=answer.quoted,
            timings=answer.rounded_timings(),
            searched=answer.query if answer.query != answer.question else None,  # follow-up or typos rewritten
            indexing=answer.indexing,
        )
        payload = stored.model_dump(mode="json")
        message_id = self.store.add_message(chat_id, answer.question, answer.text, answer.backend, payload)
        return self._shown(MessageRecord(message_id, chat_id, 0, answer.question, answer.text, answer.backend,
                                         payload), readable)

    @staticmethod
    def _shown(message: MessageRecord, readable: set[str]) -> ShownMessage:
        shown = ShownMessage.model_validate({**message.payload, "id": message.id, "question": message.question,
                                             "answer": message.answer, "backend": message.backend})
        if any(s.collection not in readable for s in shown.sources):
            return ShownMessage(id=message.id, question=message.question, answer=WITHHELD, backend=message.backend,
                                withheld=True)
        return shown
