"""The chat page: conversations in a sidebar, streamed answers with clickable sources, feedback."""

from __future__ import annotations

from collections.abc import Iterator
from html import escape
from typing import Any

import gradio as gr

from assistant.audit import Principal
from assistant.chats import ChatEvent, ChatService, Conversation, Saved, SourcesReady
from assistant.events import Evidence, Stage, Status, Token, Waiting
from assistant.runtime import RuntimeSettings
from ui.errors import shows_errors
from ui.render import LiveAnswer, StreamedTranscript, sources_html, transcript_html
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
    elif isinstance(event, Status) and event.stage is Stage.GENERATING:
        live.status = None


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
        self.header = gr.HTML(js_on_load=None, elem_id="header")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1, min_width=220, elem_id="sidebar"):
                self.new_chat = gr.Button("New chat", variant="primary", elem_id="new-chat")
                self.chat_list = gr.Radio(label="Conversations", choices=[], elem_id="chat-list")
                self.title = gr.Textbox(label="Title", elem_id="chat-title")
                with gr.Row():
                    self.rename = gr.Button("Rename", size="sm", elem_id="rename-chat")
                    self.delete = gr.Button("Delete", size="sm", variant="stop", elem_id="delete-chat")
            with gr.Column(scale=3, min_width=420):
                self.collections = gr.CheckboxGroup(label="Search in", choices=[], elem_id="collections")
                self.transcript = gr.HTML(js_on_load=None, elem_id="transcript", autoscroll=True)
                with gr.Row():
                    self.question = gr.Textbox(placeholder="Ask about your documents…", show_label=False,
                                               scale=5, elem_id="question", max_lines=6)
                    self.ask = gr.Button("Ask", variant="primary", scale=1, elem_id="ask")
                self._feedback_layout()
            with gr.Column(scale=2, min_width=320, elem_id="sources-column"):
                self.sources = gr.HTML(js_on_load=None, elem_id="sources")

    def _feedback_layout(self) -> None:
        with gr.Accordion("Rate an answer", open=False, elem_id="feedback"):
            with gr.Row():
                self.rated = gr.Dropdown(label="Answer", choices=[], scale=2, elem_id="rated")
                self.comment = gr.Textbox(label="Comment (optional)", scale=3, elem_id="comment")
            with gr.Row():
                self.thumbs_up = gr.Button("👍 Helpful", size="sm", elem_id="thumbs-up")
                self.thumbs_down = gr.Button("👎 Not helpful", size="sm", elem_id="thumbs-down")
            self.rated_note = gr.HTML(js_on_load=None, elem_id="rated-note")

    def _wire(self, blocks: gr.Blocks) -> None:
        view = [self.chat_id, self.transcript, self.sources, self.collections, self.title, self.rated]
        blocks.load(self._start, outputs=[self.header, self.chat_list, *view])
        self.new_chat.click(self._new, outputs=view)
        self.chat_list.input(self._open, inputs=[self.chat_list], outputs=view)
        gr.on([self.ask.click, self.question.submit], self._ask,
              inputs=[self.question, self.chat_id, self.collections],
              outputs=[self.question, *view, self.chat_list, self.header])
        self.rename.click(self._rename, inputs=[self.chat_id, self.title], outputs=[self.chat_list])
        self.delete.click(self._delete, inputs=[self.chat_id], outputs=[self.chat_list, *view])
        for button, helpful in ((self.thumbs_up, True), (self.thumbs_down, False)):
            button.click(self._rater(helpful), inputs=[self.rated, self.comment],
                         outputs=[self.rated_note, self.comment])

    # what the handlers return

    def _chat_choices(self, principal: Principal, selected: int | None) -> Any:
        choices = [(c.title, c.id) for c in self.chats.chats(principal)]
        return gr.update(choices=choices, value=selected)

    def _view(self, conversation: Conversation) -> tuple[Any, ...]:
        """State, transcript, sources, collections, title and rateable answers of one chat (or a new one)."""
        chat, readable, messages = conversation.chat, conversation.readable, conversation.messages
        if chat is None:
            return (None, transcript_html([]), sources_html([]), gr.update(choices=readable, value=readable),
                    "", gr.update(choices=[], value=None))
        chosen = [c for c in chat.collections if c in readable]
        answers = [(f"{i}. {m.question[:50]}", m.id) for i, m in enumerate(messages, 1)]
        return (chat.id, transcript_html(messages), sources_html(messages), gr.update(choices=readable, value=chosen),
                chat.title, gr.update(choices=answers, value=answers[-1][1] if answers else None))

    # handlers

    @shows_errors
    def _start(self, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)
        return (header_html(principal, self.runtime.model_label()), self._chat_choices(principal, None),
                *self._view(self.chats.conversation(principal, None)))

    @shows_errors
    def _new(self, request: gr.Request) -> tuple[Any, ...]:
        return self._view(self.chats.conversation(self.session.principal(request), None))

    @shows_errors
    def _open(self, chat_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        return self._view(self.chats.conversation(self.session.principal(request), chat_id))

    @shows_errors
    def _ask(self, question: str, chat_id: int | None, collections: list[str],
             request: gr.Request) -> Iterator[tuple[Any, ...]]:
        principal = self.session.principal(request)
        conversation = self.chats.conversation(principal, chat_id)  # read once; the question continues it
        shown, live = StreamedTranscript(conversation.messages), LiveAnswer(question)
        for event in self.chats.ask(principal, conversation, question, list(collections or [])):
            if isinstance(event, Saved):
                yield ("", *self._view(event.conversation), self._chat_choices(principal, event.chat_id),
                       header_html(principal, self.runtime.model_label()))
                return
            follow(live, event)
            yield ("", chat_id, shown.transcript(live), shown.sources(live), gr.update(), gr.update(),
                   gr.update(), gr.update(), gr.update())

    @shows_errors
    def _rename(self, chat_id: int | None, title: str, request: gr.Request) -> Any:
        principal = self.session.principal(request)
        if chat_id is None:
            raise gr.Error("open a conversation first")
        self.chats.rename(principal, chat_id, title)
        return self._chat_choices(principal, chat_id)

    @shows_errors
    def _delete(self, chat_id: int | None, request: gr.Request) -> tuple[Any, ...]:
        principal = self.session.principal(request)
        if chat_id is not None:
            self.chats.delete(principal, chat_id)
        return (self._chat_choices(principal, None), *self._view(self.chats.conversation(principal, None)))

    def _rater(self, helpful: bool) -> Any:
        @shows_errors
        def rate(message_id: int | None, comment: str, request: gr.Request) -> tuple[str, str]:
            if message_id is None:
                raise gr.Error("ask a question first, then rate its answer")
            self.chats.feedback(self.session.principal(request), int(message_id), helpful, comment)
            return '<p class="thanks">Thank you: your rating was saved.</p>', ""

        return rate
