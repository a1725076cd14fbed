"""One model the install can answer with, as the catalogue lists it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Source = Literal["packaged", "data-dir", "ollama-store", "ollama-host", "openai-server"]
LOCAL_SOURCES: tuple[Source, ...] = ("packaged", "data-dir", "ollama-store")
"""Sources whose models are GGUF files on this machine, run in-process by llama.cpp."""


@dataclass(frozen=True)
class ModelEntry:
    """A model, where it is, and what its file or server says about it (None: not stated)."""

    name: str
    source: Source
    location: str
    """The GGUF file (for packaged models in chunks: where they are joined on first use), or the server URL."""
    family: str | None = None
    parameters: int | None = None
    quantisation: str | None = None
    size_bytes: int | None = None
    sha256: str | None = None
    context_length: int | None = None
    has_chat_template: bool | None = None
    """True: instruction-tuned, answers in its own chat template; False: a base model."""
    licence: str | None = None
    package: str | None = None
    """The installed Python package that carries the weights (packaged models)."""
    chunks: tuple[str, ...] = field(default=())
    """The files a packaged model is split into, in order; empty when it is one file."""

    @property
    def is_local(self) -> bool:
        """Whether the model is a GGUF file on this machine (else a server answers with it)."""
        return self.source in LOCAL_SOURCES

    @property
    def key(self) -> str:
        """A stable identity for results: the name, where it is, and its size."""
        return f"{self.source}:{self.name}@{self.location}#{self.size_bytes or 0}"

    def to_json(self) -> dict[str, Any]:
        """The entry as `models list --json` prints it."""
        out = asdict(self)
        out["chunks"] = list(self.chunks)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ModelEntry:
        """The entry ``to_json`` wrote."""
        return cls(**{**raw, "chunks": tuple(raw.get("chunks") or ())})


@dataclass
class Catalogue:
    """Every model found, and why a source could not be listed (a server down, a file unreadable)."""

    models: list[ModelEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The catalogue as `models list --json` prints it."""
        return {"models": [m.to_json() for m in self.models], "problems": list(self.problems)}

    def find(self, name: str) -> ModelEntry | None:
        """The first model called ``name`` (a file name, an Ollama name, a served name)."""
        return next((m for m in self.models if m.name == name), None)
