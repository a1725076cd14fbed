"""sha256 of model files, computed once and kept by path, size and modification time.

Hashing a multi-GB GGUF takes many seconds, so the catalogue looks a digest up in a small JSON
file in the data dir and computes it only for a file it has not seen as it is now.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

CACHE_NAME = "model-checksums.json"
BLOCK = 1 << 20


def file_state(paths: Sequence[Path]) -> tuple[int, float]:
    """Total size and latest modification time of a file (or of the chunks of one)."""
    stats = [path.stat() for path in paths]
    return sum(s.st_size for s in stats), max(s.st_mtime for s in stats)


class ChecksumCache:
    """Digests by path, valid while the file keeps its size and modification time."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / CACHE_NAME

    def _load(self) -> dict[str, dict[str, object]]:
        try:
            loaded = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError:  # a damaged cache only costs hashing again
            return {}
        return loaded if isinstance(loaded, dict) else {}

    def known(self, paths: Sequence[Path]) -> str | None:
        """The cached digest of ``paths`` (joined in order), or None when it is not cached for them as they are."""
        size, mtime = file_state(paths)
        entry = self._load().get(str(paths[0]))
        if isinstance(entry, dict) and entry.get("size") == size and entry.get("mtime") == mtime:
            digest = entry.get("sha256")
            return digest if isinstance(digest, str) else None
        return None

    def digest(self, paths: Sequence[Path]) -> str:
        """The sha256 of ``paths`` joined in order, from the cache or computed (and then cached)."""
        cached = self.known(paths)
        if cached:
            return cached
        size, mtime = file_state(paths)
        hasher = hashlib.sha256()
        for path in paths:
            with path.open("rb") as handle:
                while block := handle.read(BLOCK):
                    hasher.update(block)
        self.remember(paths[0], size, mtime, hasher.hexdigest())
        return hasher.hexdigest()

    def remember(self, path: Path, size: int, mtime: float, sha256: str) -> None:
        """Record a digest computed elsewhere (while copying a file in)."""
        entries = self._load()
        entries[str(path)] = {"size": size, "mtime": mtime, "sha256": sha256}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside and moved in place, so another process never reads half a file.
        handle, partial = tempfile.mkstemp(prefix=f".{CACHE_NAME}.", dir=self.path.parent)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(entries, out, indent=1, sort_keys=True)
        os.replace(partial, self.path)
