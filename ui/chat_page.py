"""The chat page: conversations in a sidebar, streamed answers with clickable sources, thumbs under each answer."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import gradio as gr
from pydantic import BaseModel, Field, ValidationError

from assistant.audit import Principal
from assistant.chats import ChatEvent, ChatService, Conversation, Saved, SourcesReady
from assistant.events import Evidence, Stage, Status, Token, Waiting
from assistant.runtime import RuntimeSettings
from ui.errors import shows_errors
from ui.render import LiveAnswer, StreamedTranscript, no_documents_html, sources_html, transcript_html
from ui.session import SessionReader


def header_html(principal: Principal, model: str) -> str:
    """The top bar: who is signed in, which model answers, admin and API token links, sign-out."""
    admin = '<a href="/admin/">Admin</a>' if principal.is_admin else ""
    return (
        '<div class="topbar"><span class="brand">Enclave</span>'
        f'<span class="model" title="the model that writes answers">Model: {escape(model)}</span>'
        f'<span class="who">{escape(principal.username)}</span>{admin}'
        '<a href="/account/password" title="change your password">Password</a>'
        '<a href="/account/tokens" title="tokens for scripts and tools using the HTTP API">API tokens</a>'
        '<form method="post" action="/logout"><button type="submit" class="signout">Sign out</button></form></div>'
    )


def follow(live: LiveAnswer, event: ChatEvent) -> None:
    """Update the answer being written with one streamed event."""
    if isinstance(event, SourcesReady):
        live.sources = event.sources
    elif isinstance(event, Evidence):
        live.evidence = event.quotes
    elif isinstance(event, Token):
        live.answer += event.text
    elif isinstance(event, Waiting):
        live.status = event.detail  # the place in line for the model
    elif isinstance(event, Status) and event.stage is Stage.REWRITING:
        live.searched = event.detail
    elif isinstance(event, Status) and event.stage is Stage.INDEXING:
        live.indexing = event.detail
    elif isinstance(event, Status) and event.stage is Stage.GENERATING:
        live.status = None


class Rating(BaseModel):
    """A thumb pressed under an answer, as ``ui/static/chat.js`` sends it."""

    message_id: int = Field(ge=0, lt=2**63)
    helpful: bool
    comment: str = Field(default="", max_length=2000)


class ChatPage:
    """Builds the chat Blocks; every handler resolves the signed-in user and calls one service."""

    def __init__(self, chats: ChatService, runtime: RuntimeSettings, session: SessionReader) -> None:
        self.chats = chats
        self.runtime = runtime
        self.session = session

    def build(self) -> gr.Blocks:
        """The page, laid out and wired."""
        with gr.Blocks(title="Enclave", fill_width=True) as blocks:
            self._layout()
            self._wire(blocks)
        return blocks

    def _layout(self) -> None:
        self.chat_id = gr.State(None)
        self.pending = gr.State("")  # the question taken from the box, being answered
        self.busy = gr.State(False)  # an answer is streaming: another question waits in the box
        self.doomed = gr.State(None)  # the conversation the delete question names
        self.header = gr.HTML(js_on_load=None, elem_id="header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=220, elem_id="sidebar"):
                self._sidebar_layout()
            with gr.Column(scale=3, min_width=420):
                self.collections = gr.CheckboxGroup(label="Search in", choices=[], elem_id="collections")
                self.transcript = gr.HTML(js_on_load=None, elem_id="transcript", autoscroll=True)
                with gr.Row():
                    self.question = gr.Textbox(label="Your question", placeholder="Ask about your documents…",
                                               show_label=False, scale=5, elem_id="question", max_lines=6)
                    self.ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                self.rated_note = gr.HTML(js_on_load=None, elem_id="rated-note")
                # Filled and pressed by chat.js when a thumb under an answer is clicked.
                self.rating = gr.Textbox(visible="hidden", elem_id="rating-payload")
                self.send_rating = gr.Button(visible="hidden", elem_id="rating-send")
            with gr.Column(scale=2, min_width=320, elem_id="sources-column"):
                self.sources = gr.HTML(js_on_load=None, elem_id="sources")

    def _sidebar_layout(self) -> None:
        self.new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
        self.chat_list = gr.Radio(label="Conversations", choices=[], elem_id="chat-list")
        self.title = gr.Textbox(label="Title", elem_id="chat-title")
        with gr.Row():
            self.rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
            self.delete = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
        with gr.Column(visible=False, elem_id="delete-confirm") as self.confirm:
            self.confirm_text = gr.HTML(js_on_load=None, elem_id="delete-question")
            with gr.Row():
                self.confirm_delete = gr.Button("Yes, delete", size="sm", variant="stop", elem_id="delete-yes")
                self.cancel_delete = gr.Button("Cancel", size="sm", elem_id="delete-no")

    def _wire(self, blocks: gr.Blocks) -> None:
        view = [self.chat_id, self.transcript, self.sources, self.collections, self.title]
        blocks.load(self._start, outputs=[self.header, self.chat_list, *view])
        self.new_chat.click(self._new, outputs=[*view, self.chat_list])
        self.chat_list.input(self._open, inputs=[self.chat_list], outputs=view)
        self._wire_ask(view)
        self.rename.click(self._rename, inputs=[self.chat_id, self.title], outputs=[self.chat_list])
        self.delete.click(self._confirm, inputs=[self.chat_id, self.title],
                          outputs=[self.confirm, self.confirm_text, self.doomed])
        for dismissed in (self.cancel_delete.click, self.new_chat.click, self.chat_list.input):
            dismissed(lambda: gr.update(visible=False), outputs=[self.confirm], queue=False)
        self.confirm_delete.click(self._delete, inputs=[self.doomed], outputs=[self.confirm, self.chat_list, *view])
        self.send_rating.click(self._rate, inputs=[self.rating], outputs=[self.rated_note])

    def _wire_ask(self, view: list[Any]) -> None:
        """Ask takes the question from the box and is disabled until the answer is saved.

        A question typed meanwhile stays in the box (pressing Enter says to wait), so it is never
        lost or sent as a new conversation while the first one has no id yet.
        """
        taken = gr.on([self.ask.click, self.question.submit], self._take, inputs=[self.question, self.busy],
                      outputs=[self.pending, self.question, self.ask, self.busy], queue=False)
        answered = taken.success(self._ask, inputs=[self.pending, self.chat_id, self.collections],
                                 outputs=[*view, self.chat_list, self.header, self.pending])
        # Gradio runs .then() after success only; .failure() covers an answer that failed. After success the
        # question box is left alone: a next question typed as the answer finished must not be wiped.
        answered.then(self._ready, outputs=[self.ask, self.busy], queue=False)
        answered.failure(self._settle, inputs=[self.pending, self.question],
                         outputs=[self.ask, self.busy, self.question, self.pending], queue=False)

    # what the handlers return

    def _chat_choices(self, principal: Principal, selected: int | None) -> Any:
        choices = [(c.title, c.id) for c in self.chats.chats(principal)]
        return gr.update(choices=choices, value=selected)

    def _view(self, principal: Principal, conversation: Conversation) -> tuple[Any, ...]:
        """State, transcript, sources, collections and title of one chat (or a new one)."""
        chat, readable, messages = conversation.chat, conversation.readable, conversation.messages
        if chat is None:
            empty = transcript_html([]) if readable else no_documents_html(principal.is_admin)
            return (None, empty, sources_html([]), gr.update(choices=readable, value=readable), "")
        chosen = [c for c in chat.collections if c in readable]
        return (chat.id, transcript_html(messages), sources_html(messages), gr.update(choices=readable, value=chosen),
                chat.title)

    # handlers

    @shows_errors
    def _start(self, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)
        return (header_html(principal, self.runtime.model_label()), self._chat_choices(principal, None),
                *self._view(principal, self.chats.conversation(principal, None)))

    @shows_errors
    def _new(self, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)  # no conversation stays selected in the list
        return *self._view(principal, self.chats.conversation(principal, None)), gr.update(value=None)

    @shows_errors
    def _open(self, chat_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)
        return self._view(principal, self.chats.conversation(principal, chat_id))

    @staticmethod
    def _take(question: str, busy: bool) -> tuple[Any, ...]:
        if busy:
            raise gr.Error("An answer is still being written: your question stays in the box, ask it when it is done.")
        if not question.strip():
            raise gr.Error("Type a question first.")
        return question, "", gr.update(interactive=False), True

    @staticmethod
    def _ready() -> tuple[Any, ...]:
        """Ask is enabled again once the answer is saved."""
        return gr.update(interactive=True), False

    @staticmethod
    def _settle(pending: str, question: str) -> tuple[Any, ...]:
        """After a failed answer: Ask is enabled again; the question goes back into the box unless another is."""
        return gr.update(interactive=True), False, question if question.strip() else pending, ""

    @shows_errors
    def _ask(self, question: str, chat_id: int | None, collections: list[str],
             request: gr.Request) -> Iterator[tuple[Any, ...]]:
        principal = self.session.principal(request)
        conversation = self.chats.conversation(principal, chat_id)  # read once; the question continues it
        shown, live = StreamedTranscript(conversation.messages), LiveAnswer(question)
        for event in self.chats.ask(principal, conversation, question, list(collections or [])):
            if isinstance(event, Saved):
                yield (*self._view(principal, event.conversation), self._chat_choices(principal, event.chat_id),
                       header_html(principal, self.runtime.model_label()), "")  # answered: nothing to give back
                return
            follow(live, event)
            yield (chat_id, shown.transcript(live), shown.sources(live), gr.update(), gr.update(), gr.update(),
                   gr.update(), gr.update())

    @shows_errors
    def _rename(self, chat_id: int | None, title: str, request: gr.Request) -> Any:
        principal = self.session.principal(request)
        if chat_id is None:
            raise gr.Error("open a conversation first")
        self.chats.rename(principal, chat_id, title)
        gr.Info(f"Renamed to “{title.strip()}”.")
        return self._chat_choices(principal, chat_id)

    @staticmethod
    def _confirm(chat_id: int | None, title: str) -> tuple[Any, str, int]:
        if chat_id is None:
            raise gr.Error("open a conversation first")
        return (gr.update(visible=True),
                f"<p>Delete “{escape(title)}” and all its answers? This cannot be undone.</p>", chat_id)

    @shows_errors
    def _delete(self, chat_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)
        if chat_id is not None:
            self.chats.delete(principal, chat_id)
            gr.Info("Conversation deleted.")
        return (gr.update(visible=False), self._chat_choices(principal, None),
                *self._view(principal, self.chats.conversation(principal, None)))

    @shows_errors
    def _rate(self, payload: str, request: gr.Request) -> str:
        try:
            rating = Rating.model_validate_json(payload)
        except ValidationError as exc:
            raise gr.Error("that rating could not be read; reload the page and try again") from exc
        self.chats.feedback(self.session.principal(request), rating.message_id, rating.helpful, rating.comment)
        return '<p class="thanks" role="status">Thank you: your rating was saved.</p>'
