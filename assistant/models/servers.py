"""Models that configured Ollama hosts and OpenAI-compatible servers list, over HTTP with short timeouts."""

from __future__ import annotations

import re
from typing import Any

import httpx

from assistant.models.entry import Catalogue, ModelEntry
from assistant.settings import GenerationSettings

BASE_TEMPLATE = re.compile(r"^\s*\{\{-?\s*\.Prompt\s*-?\}\}\s*$")  # Ollama's template for a base model
SIZE_RE = re.compile(r"^([\d.]+)\s*([KMBT]?)$", re.IGNORECASE)
SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def list_servers(settings: GenerationSettings, catalogue: Catalogue, timeout_s: float) -> None:
    """Add the models every configured server lists to ``catalogue``; a server that fails is a problem."""
    timeout = httpx.Timeout(timeout_s)
    with httpx.Client(timeout=timeout) as client:
        for host in settings.ollama.hosts:
            try:
                catalogue.models.extend(_ollama_models(client, host.rstrip("/")))
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                catalogue.problems.append(f"the Ollama host {host} did not list its models: {_why(error)}")
        key = settings.openai.api_key.get_secret_value() if settings.openai.api_key else None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        for url in settings.openai.base_urls:
            try:
                catalogue.models.extend(_openai_models(client, url.rstrip("/"), headers))
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                catalogue.problems.append(f"the OpenAI-compatible server {url} did not list its models: {_why(error)}")


def _why(error: Exception) -> str:
    if isinstance(error, httpx.HTTPStatusError):
        return f"it answered {error.response.status_code}"
    if isinstance(error, httpx.TimeoutException):
        return "it did not answer in time"
    if isinstance(error, httpx.TransportError):
        return f"it cannot be reached ({error})"
    return f"its answer is not the API's ({error})"


def _ollama_models(client: httpx.Client, host: str) -> list[ModelEntry]:
    response = client.get(f"{host}/api/tags")
    response.raise_for_status()
    entries = []
    for tag in response.json()["models"]:
        name = str(tag["name"])
        details = tag.get("details") or {}
        shown = client.post(f"{host}/api/show", json={"model": name})
        show: dict[str, Any] = shown.json() if shown.status_code == 200 else {}
        info = show.get("model_info") or {}
        family = details.get("family") or info.get("general.architecture")
        context = info.get(f"{family}.context_length") if family else None
        template = show.get("template")
        entries.append(ModelEntry(
            name=name, source="ollama-host", location=host, family=family,
            parameters=parse_size(details.get("parameter_size")), quantisation=details.get("quantization_level"),
            size_bytes=tag.get("size"), context_length=context if isinstance(context, int) else None,
            has_chat_template=None if template is None else not BASE_TEMPLATE.match(template),
            licence=_first_line(show.get("license")),
        ))
    return entries


def _openai_models(client: httpx.Client, url: str, headers: dict[str, str]) -> list[ModelEntry]:
    response = client.get(f"{url}/models", headers=headers)
    response.raise_for_status()
    entries = []
    for served in response.json()["data"]:
        meta = served.get("meta") or {}  # llama.cpp's server describes the file; vLLM gives max_model_len
        context = served.get("max_model_len") or meta.get("n_ctx_train")
        entries.append(ModelEntry(
            name=str(served["id"]), source="openai-server", location=url,
            parameters=meta.get("n_params"), size_bytes=meta.get("size"),
            context_length=context if isinstance(context, int) else None,
        ))
    return entries


def parse_size(text: Any) -> int | None:
    """Parameters from Ollama's "268.10M" or "7B"."""
    match = SIZE_RE.match(str(text or "").strip())
    return round(float(match.group(1)) * SCALE[match.group(2).upper()]) if match else None


def _first_line(text: Any) -> str | None:
    """A licence's name: the first non-empty line of the text Ollama returns."""
    lines = [line.strip() for line in str(text or "").splitlines() if line.strip()]
    return lines[0][:120] if lines else None
