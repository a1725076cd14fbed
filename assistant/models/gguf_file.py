"""What a GGUF file says about its model, read from its header without touching the weights.

The header is read as a stream rather than with ``gguf.GGUFReader``: the reader maps the whole
file and turns every metadata array into numpy (10 s for the 262,144-word vocabulary of the
packaged Gemma), and it needs one file, while packaged models may come in chunks
(``model.gguf.part00``, ``part01``, ...) that are only joined on first use. The ``gguf``
package still names the value and file types.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from assistant.errors import InvalidInput

MAGIC = b"GGUF"
READ_AHEAD = 1 << 20
KEPT_ARRAY_ITEMS = 64  # longer arrays (vocabularies, merges) are skipped, only counted
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
STRING, ARRAY = 8, 9
_LENGTH = struct.Struct("<Q")


class NotAGGUF(InvalidInput):
    """A file is not a GGUF model, or its header cannot be read; the message says which file and why."""


@dataclass
class GGUFHeader:
    """The metadata and tensor shapes of a GGUF file."""

    version: int
    metadata: dict[str, Any]
    tensor_types: Counter[int] = field(default_factory=Counter)
    parameters: int = 0

    @property
    def architecture(self) -> str | None:
        """The model family as llama.cpp knows it ("gemma3", "llama", "qwen2")."""
        value = self.metadata.get("general.architecture")
        return str(value) if value else None

    @property
    def context_length(self) -> int | None:
        """The context length the model was trained for."""
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if isinstance(value, int) else None

    @property
    def chat_template(self) -> str | None:
        """The model's own chat template (Jinja), present in instruction-tuned models."""
        value = self.metadata.get("tokenizer.chat_template")
        return value if isinstance(value, str) and value.strip() else None

    @property
    def quantisation(self) -> str | None:
        """The file type ("Q4_K_M"), or the commonest tensor type when the header does not name one."""
        from gguf import GGMLQuantizationType, LlamaFileType

        file_type = self.metadata.get("general.file_type")
        if isinstance(file_type, int):
            try:
                return LlamaFileType(file_type).name.removeprefix("MOSTLY_")
            except ValueError:
                return f"file type {file_type}"
        if not self.tensor_types:
            return None
        commonest = self.tensor_types.most_common(1)[0][0]
        try:
            return GGMLQuantizationType(commonest).name
        except ValueError:
            return f"tensor type {commonest}"


class _Chained:
    """Several files read as one stream (a model packaged in chunks)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self._paths = list(paths)
        self._file: BinaryIO | None = None

    def read(self, size: int) -> bytes:
        parts: list[bytes] = []
        while size > 0:
            if self._file is None:
                if not self._paths:
                    break
                self._file = self._paths.pop(0).open("rb")
            piece = self._file.read(size)
            if not piece:
                self._file.close()
                self._file = None
                continue
            parts.append(piece)
            size -= len(piece)
        return b"".join(parts)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def read_header(paths: Path | Sequence[Path]) -> GGUFHeader:
    """Read the metadata and tensor shapes of a GGUF file (or of its chunks, in order).

    Raises:
        NotAGGUF: the file does not start with the GGUF magic, or its header is cut short or malformed.
    """
    chunks = [paths] if isinstance(paths, Path) else list(paths)
    stream = _Chained(chunks)
    try:
        return _Parser(stream, chunks[0]).header()
    except OSError as error:
        raise NotAGGUF(f"{chunks[0]} cannot be read: {error}") from error
    finally:
        stream.close()


class _Parser:
    def __init__(self, stream: _Chained, path: Path) -> None:
        self._stream = stream
        self._path = path
        self._buffer = b""
        self._at = 0

    def header(self) -> GGUFHeader:
        if self._read(4) != MAGIC:
            raise NotAGGUF(f"{self._path.name} is not a GGUF model file (it does not start with 'GGUF')")
        version = self._scalar("<I")
        if version < 2:
            raise NotAGGUF(f"{self._path.name} is a GGUF version {version} file; llama.cpp reads version 2 and up")
        tensors, entries = self._scalar("<Q"), self._scalar("<Q")
        metadata = {}
        for _ in range(entries):
            key = self._string()
            metadata[key] = self._value(self._scalar("<I"))
        header = GGUFHeader(version, metadata)
        for _ in range(tensors):
            self._string()
            dims = [self._scalar("<Q") for _ in range(self._scalar("<I"))]
            header.tensor_types[self._scalar("<I")] += 1
            self._scalar("<Q")  # the offset of the weights, which stay unread
            header.parameters += math.prod(dims)
        return header

    def _ensure(self, size: int) -> None:
        """Have ``size`` unread bytes in the buffer, reading ahead in large blocks."""
        if self._at + size > len(self._buffer):
            self._buffer = self._buffer[self._at:] + self._stream.read(max(size, READ_AHEAD))
            self._at = 0
            if size > len(self._buffer):
                raise NotAGGUF(f"{self._path.name} is cut short: its GGUF header ends before it says it does")

    def _read(self, size: int) -> bytes:
        self._ensure(size)
        self._at += size
        return self._buffer[self._at - size:self._at]

    def _skip(self, size: int) -> None:
        """Pass over ``size`` bytes in blocks, so a forged length cannot make one huge read."""
        while size > 0:
            step = min(size, READ_AHEAD)
            self._ensure(step)
            self._at += step
            size -= step

    def _skip_strings(self, count: int) -> None:
        """Pass over an array of strings (a vocabulary of 10^5 words) as fast as Python can."""
        unpack = _LENGTH.unpack_from
        for _ in range(count):
            self._ensure(8)
            length = unpack(self._buffer, self._at)[0]
            self._at += 8
            self._ensure(length)
            self._at += length

    def _scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))[0]

    def _string(self) -> str:
        length = self._scalar("<Q")
        if length > 1 << 26:  # no key or value is 64 MB long: this is garbage, not a header
            raise NotAGGUF(f"{self._path.name} has a malformed GGUF header (a {length}-byte string)")
        return self._read(length).decode("utf-8", errors="replace")

    def _value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self._scalar(_SCALARS[kind])
        if kind == STRING:
            return self._string()
        if kind == ARRAY:
            item_kind, count = self._scalar("<I"), self._scalar("<Q")
            if item_kind in _SCALARS and count > KEPT_ARRAY_ITEMS:
                self._skip(count * struct.calcsize(_SCALARS[item_kind]))
                return f"[{count} items]"
            if item_kind == STRING and count > KEPT_ARRAY_ITEMS:
                self._skip_strings(count)
                return f"[{count} items]"
            items = [self._value(item_kind) for _ in range(count)]
            return items if count <= KEPT_ARRAY_ITEMS else f"[{count} items]"
        raise NotAGGUF(f"{self._path.name} has a malformed GGUF header (value type {kind})")
