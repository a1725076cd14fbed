"""Models already pulled into an Ollama store on this machine, loaded by llama.cpp without a server.

Ollama keeps each model as a manifest (``manifests/<registry>/<namespace>/<model>/<tag>``, JSON)
that lists content-addressed layers; the layer of media type ``application/vnd.ollama.image.model``
is the GGUF file, stored as ``blobs/sha256-<hex>``. So a site whose Ollama server is stopped, or
which copied a store from a connected machine, can answer with the same model by its name.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from assistant.errors import ConfigError

MODEL_LAYER = "application/vnd.ollama.image.model"
DEFAULT_REGISTRY = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
SETTING = "generation.embedded.ollama_model"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


def default_stores() -> list[Path]:
    """Where Ollama keeps models: ``$OLLAMA_MODELS``, the user's store, and the Linux service's store."""
    found = [Path(os.environ["OLLAMA_MODELS"])] if os.environ.get("OLLAMA_MODELS") else []
    return [*found, Path.home() / ".ollama" / "models", Path("/usr/share/ollama/.ollama/models")]


def manifest_path(store: Path, name: str) -> Path:
    """The manifest of ``name`` ("gemma3:270m", "team/model:tag", "host/team/model:tag") in ``store``."""
    path, _, tag = name.rpartition(":") if ":" in name.rsplit("/", 1)[-1] else (name, "", DEFAULT_TAG)
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 3 or any(part in (".", "..") for part in [*parts, tag]):
        raise ConfigError(f"{SETTING} {name!r} is no Ollama model name (like 'gemma3:270m' or 'team/model:tag')")
    if len(parts) == 1:
        parts = [DEFAULT_REGISTRY, DEFAULT_NAMESPACE, *parts]
    elif len(parts) == 2:
        parts = [DEFAULT_REGISTRY, *parts]
    return store.joinpath("manifests", *parts, tag)


def pulled_models(store: Path) -> list[str]:
    """The models in ``store``, named as ``ollama list`` names them."""
    root = store / "manifests"
    names = []
    for manifest in sorted(root.glob("*/*/*/*")):
        registry, namespace, model, tag = manifest.relative_to(root).parts
        if registry != DEFAULT_REGISTRY:
            names.append(f"{registry}/{namespace}/{model}:{tag}")
        elif namespace != DEFAULT_NAMESPACE:
            names.append(f"{namespace}/{model}:{tag}")
        else:
            names.append(f"{model}:{tag}")
    return names


def model_blob(name: str, store: Path | None = None) -> Path:
    """The GGUF file of model ``name`` in ``store`` (or the first default store that has it).

    Raises:
        ConfigError: no store has the model, its manifest is unreadable or lists no model layer,
            or the blob it names is missing; the message says what to do.
    """
    stores = [store] if store is not None else default_stores()
    for candidate in stores:
        manifest = manifest_path(candidate, name)
        if manifest.is_file():
            return _blob_of(candidate, manifest, name)
    available = sorted({model for candidate in stores for model in pulled_models(candidate)})
    looked = ", ".join(str(candidate) for candidate in stores)
    raise ConfigError(
        f"{SETTING} {name!r} is not in the Ollama store (looked in {looked}); "
        + (f"models there: {', '.join(available)}" if available else "no models are pulled there")
        + f"; run `ollama pull {name}` on a machine with the store, or set generation.embedded.ollama_store"
    )


def _blob_of(store: Path, manifest: Path, name: str) -> Path:
    try:
        layers = json.loads(manifest.read_text(encoding="utf-8")).get("layers", [])
    except (OSError, ValueError, AttributeError) as error:
        raise ConfigError(f"{SETTING}: the manifest {manifest} of {name!r} is unreadable ({error})") from error
    digests = [layer.get("digest", "") for layer in layers if isinstance(layer, dict)
               and layer.get("mediaType") == MODEL_LAYER]
    if not digests or not DIGEST_RE.fullmatch(str(digests[0])):
        raise ConfigError(f"{SETTING}: the manifest {manifest} of {name!r} lists no model file")
    blob = store / "blobs" / digests[0].replace(":", "-", 1)
    if not blob.is_file():
        raise ConfigError(f"{SETTING}: {name!r} names {blob}, which is missing: pull the model again")
    return blob
