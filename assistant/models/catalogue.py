"""The models the install can answer with: packaged GGUFs, the data dir's models folder, Ollama stores
and the configured model servers, each with what its file or server states about it."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata as metadata
import os
import re
import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from assistant.errors import ConfigError, InvalidInput
from assistant.llm.ollama_store import default_stores, model_blob, pulled_models
from assistant.models.checksums import BLOCK, ChecksumCache, file_state
from assistant.models.entry import Catalogue, ModelEntry, Source
from assistant.models.gguf_file import GGUFHeader, NotAGGUF, read_header
from assistant.settings import Settings

CHUNK_RE = re.compile(r"^(?P<model>.+\.gguf)\.part(?P<n>\d+)$")
MODELS_FOLDER = "models"


def models_dir(data_dir: Path) -> Path:
    """Where admins drop GGUF files and where packaged models in chunks are joined."""
    return data_dir / MODELS_FOLDER


def list_models(settings: Settings, *, checksums: bool = True, timeout_s: float = 2.0) -> Catalogue:
    """Every model the install can answer with.

    Args:
        settings: Where the data dir, the Ollama store and the model servers are.
        checksums: Compute the sha256 of files not hashed before (slow for large files the first
            time); False leaves those None and lists at once.
        timeout_s: Longest wait for each model server.

    Returns:
        The models, packaged first, then the data dir's, the Ollama stores', the servers'; and a
        problem for each source that could not be read.
    """
    from assistant.models.servers import list_servers

    catalogue = Catalogue()
    cache = ChecksumCache(settings.data_dir)
    packaged = _packaged(settings.data_dir, cache, checksums, catalogue)
    joined = {Path(m.location) for m in packaged if m.chunks}
    catalogue.models.extend(packaged)
    for path in sorted(models_dir(settings.data_dir).glob("*.gguf")):
        if path not in joined:
            _add_file(catalogue, "data-dir", path.name, [path], cache, checksums)
    _ollama_store(settings, catalogue, cache, checksums)
    list_servers(settings.generation, catalogue, timeout_s)
    return catalogue


def _entry(name: str, source: Source, location: Path, header: GGUFHeader, size: int, sha256: str | None,
           package: str | None = None, chunks: tuple[str, ...] = ()) -> ModelEntry:
    return ModelEntry(
        name=name, source=source, location=str(location), family=header.architecture,
        parameters=header.parameters or None, quantisation=header.quantisation, size_bytes=size, sha256=sha256,
        context_length=header.context_length, has_chat_template=header.chat_template is not None,
        licence=_text(header.metadata.get("general.license")), package=package, chunks=chunks,
    )


def _text(value: object) -> str | None:
    return str(value) if isinstance(value, str) and value.strip() else None


def _add_file(catalogue: Catalogue, source: Source, name: str, paths: list[Path], cache: ChecksumCache,
              checksums: bool, *, location: Path | None = None, sha256: str | None = None,
              package: str | None = None, package_licence: str | None = None, chunks: tuple[str, ...] = ()) -> None:
    """Read a file's header into the catalogue; an unreadable one is listed as a problem, not dropped silently."""
    try:
        header = read_header(paths)
        size, _ = file_state(paths)
        digest = sha256 or (cache.digest(paths) if checksums else cache.known(paths))
    except (NotAGGUF, OSError) as error:
        catalogue.problems.append(f"{paths[0]} is listed without details: {error}")
        return
    entry = _entry(name, source, location or paths[0], header, size, sha256=digest, package=package, chunks=chunks)
    if entry.licence is None and package_licence:  # the file's own statement comes first
        entry = dataclasses.replace(entry, licence=package_licence)
    catalogue.models.append(entry)


def _packaged(data_dir: Path, cache: ChecksumCache, checksums: bool, catalogue: Catalogue) -> list[ModelEntry]:
    """GGUF files inside installed Python packages, whole or in ``.gguf.partNN`` chunks."""
    found = Catalogue()
    chunks: dict[str, list[tuple[int, Path, str]]] = defaultdict(list)
    for dist in metadata.distributions():
        for file in dist.files or []:
            name = file.name
            if name.endswith(".gguf"):
                _add_file(found, "packaged", name, [Path(str(dist.locate_file(file)))], cache, checksums,
                          package=dist.name, package_licence=_package_licence(dist))
            elif match := CHUNK_RE.match(name):
                chunks[match["model"]].append((int(match["n"]), Path(str(dist.locate_file(file))), dist.name))
    parents = _parents({package for parts in chunks.values() for _, _, package in parts}) if chunks else {}
    for model, parts in sorted(chunks.items()):
        parts.sort()
        package = parents.get(parts[0][2], parts[0][2])
        _add_file(found, "packaged", model, [path for _, path, _ in parts], cache, checksums,
                  location=models_dir(data_dir) / model, package=package,
                  package_licence=_package_licence(metadata.distribution(package)),
                  chunks=tuple(str(path) for _, path, _ in parts))
    catalogue.problems.extend(found.problems)
    return found.models


def _parents(names: set[str]) -> dict[str, str]:
    """Which installed package requires each of ``names``: a chunk's package names its model's package."""
    wanted = {_normal(name): name for name in names}
    parents: dict[str, str] = {}
    for dist in metadata.distributions():
        for requirement in dist.requires or []:
            required = _normal(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])
            if required in wanted:
                parents.setdefault(wanted[required], dist.metadata["Name"])
    return parents


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _package_licence(dist: metadata.Distribution) -> str | None:
    """The licence a package's metadata states: License-Expression, License, or a licence classifier."""
    meta = dist.metadata
    for value in (meta["License-Expression"], meta["License"]):
        if value and value.strip() and len(value) < 100:  # some packages paste the whole licence text
            return value.strip()
    for classifier in meta.get_all("Classifier") or []:
        if classifier.startswith("License ::") and classifier.split(" :: ")[-1] != "OSI Approved":
            return classifier.split(" :: ")[-1]
    return None


def _ollama_store(settings: Settings, catalogue: Catalogue, cache: ChecksumCache, checksums: bool) -> None:
    """Models pulled into an Ollama store on this machine; the blob's name is its sha256."""
    embedded = settings.generation.embedded
    stores = [Path(embedded.ollama_store).expanduser()] if embedded.ollama_store else default_stores()
    for store in stores:
        if not (store / "manifests").is_dir():
            continue
        for name in pulled_models(store):
            try:
                blob = model_blob(name, store)
            except ConfigError as error:
                catalogue.problems.append(str(error))
                continue
            digest = blob.name.removeprefix("sha256-")
            _add_file(catalogue, "ollama-store", name, [blob], cache, checksums, sha256=digest)


def add_model(file: Path, data_dir: Path) -> ModelEntry:
    """Copy a GGUF file into ``DATA_DIR/models/`` after checking it is one, and return its entry.

    Raises:
        InvalidInput: the file is missing, not a GGUF model, or another model of that name is there.
        NotAGGUF: (an InvalidInput) the file is not a GGUF model or its header is unreadable.
    """
    if not file.is_file():
        raise InvalidInput(f"{file} is not a file: give the path of a .gguf model")
    header = read_header(file)
    if not header.architecture:
        raise NotAGGUF(f"{file.name} is a GGUF file without general.architecture: it is not a model llama.cpp runs")
    target = models_dir(data_dir) / (file.name if file.suffix == ".gguf" else f"{file.name}.gguf")
    cache = ChecksumCache(data_dir)
    if target.exists():
        if file_state([target])[0] == file.stat().st_size and cache.digest([target]) == cache.digest([file]):
            return _entry(target.name, "data-dir", target, header, file.stat().st_size, sha256=cache.digest([target]))
        raise InvalidInput(f"another model named {target.name} is already in {target.parent}: rename the file")
    digest = _copy(file, target)
    size, mtime = file_state([target])
    cache.remember(target, size, mtime, digest)
    return _entry(target.name, "data-dir", target, header, size, sha256=digest)


def _copy(source: Path, target: Path) -> str:
    """Copy beside the target and move it in place (no reader sees half a model); return the sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    hasher = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out, source.open("rb") as src:
            while block := src.read(BLOCK):
                hasher.update(block)
                out.write(block)
        os.replace(partial, target)
    except OSError as error:
        raise InvalidInput(f"cannot copy {source} to {target.parent}: {error}") from error
    finally:
        Path(partial).unlink(missing_ok=True)
    return hasher.hexdigest()


def local_file(entry: ModelEntry) -> Path:
    """The GGUF file of a model on this machine, joining a packaged model's chunks the first time.

    Raises:
        ConfigError: the model is served, not a file here.
    """
    if not entry.is_local:
        raise ConfigError(f"{entry.name} is served by {entry.location}, not a file on this machine")
    target = Path(entry.location)
    if not entry.chunks or (target.is_file() and target.stat().st_size == entry.size_bytes):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            for chunk in entry.chunks:
                with open(chunk, "rb") as part:
                    shutil.copyfileobj(part, out, BLOCK)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target
