"""What a request may ask Gradio to open: no body sent to a mounted page names a server path or a URL.

Gradio treats any JSON object in a request shaped like a file reference
(``{"path": ..., "meta": {"_type": "gradio.FileData"}}``) as a file to copy into its cache, whatever
the component, and downloads it when the path is an http(s) URL. Its own check, that such a file
was uploaded, runs only in apps started with ``launch()``: mounted pages skip it, and the gate
reads URLs, not bodies. So ``PayloadGuard`` reads the body of every request to a mounted Gradio
app before Gradio does, and refuses with a 4xx:

- a file reference on a page whose events take no files, and any reference that is not a regular
  file inside that app's own upload folder (resolved, so ``..`` and symlinks cannot leave it),
  or that carries a URL other than the app's own link to that same file;
- a body that is not JSON, except the raw bytes of an upload;
- uploads to a page without a component that takes files, and recordings without a video input.

``check_gradio_paths`` also turns Gradio's own upload-folder check on for the mounted pages, a
second wall behind the guard for local paths (it does not stop URLs: the guard does).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import gradio as gr
from gradio.routes import App as GradioApp
from starlette.routing import BaseRoute, Mount

from assistant.errors import InvalidInput
from ui.gate import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 8 * 2**20  # event data is short text; files come through the upload route, unbuffered
UPLOAD_ROUTE = "/gradio_api/upload"
RECORDING_ROUTE = "/gradio_api/process_recording"
FILE_ROUTE = "/gradio_api/file="
NOT_UPLOADED = "a file reference must name a file uploaded to this page"


class RefusedBody(Exception):
    """A request to a Gradio page that must not reach Gradio, with the status that says why."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class GradioMount:
    """One mounted Gradio app: where it is, where its uploads go, and what its events take."""

    prefix: str
    upload_dir: str
    takes_files: bool
    takes_recordings: bool

    def route(self, path: str) -> str | None:
        """The path inside this app, or None when the request is for somewhere else."""
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix):] or "/"
        return None


def _takes_files(component: Any) -> bool:
    model = getattr(component, "data_model", None)
    return model is not None and "FileData" in json.dumps(model.model_json_schema())


def gradio_mounts(routes: Sequence[BaseRoute]) -> list[GradioMount]:
    """The Gradio apps mounted among ``routes``; a page takes files only if one of its events has a file input."""
    found = []
    for route in routes:
        if isinstance(route, Mount) and isinstance(route.app, GradioApp):
            blocks = route.app.get_blocks()
            inputs = [c for fn in blocks.fns.values() for c in fn.inputs]
            found.append(GradioMount(route.path, os.path.realpath(route.app.uploaded_file_dir),
                                     any(_takes_files(c) for c in inputs),
                                     any(isinstance(c, gr.Video) for c in inputs)))
    return found


def check_gradio_paths(routes: Sequence[BaseRoute]) -> None:
    """Turn on Gradio's own check that an event's files were uploaded, for each mounted Gradio app.

    Gradio skips it unless ``has_launched`` is set, which only ``launch()`` does; nothing else reads it.
    """
    for route in routes:
        if isinstance(route, Mount) and isinstance(route.app, GradioApp):
            route.app.get_blocks().has_launched = True


def file_references(data: Any) -> Iterator[dict[str, Any]]:
    """Every JSON object in ``data`` that Gradio could take for a file: a path, a URL or FileData's type."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            meta = item.get("meta")
            if "path" in item or "url" in item or (isinstance(meta, dict) and meta.get("_type") == "gradio.FileData"):
                yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _inside(path: str, folder: str) -> bool:
    return path != folder and os.path.commonpath([path, folder]) == folder


def is_uploaded(path: str, upload_dir: str) -> bool:
    """Whether ``path``, symlinks resolved, is a regular file inside ``upload_dir``; opens nothing."""
    real, folder = os.path.realpath(path), os.path.realpath(upload_dir)
    try:
        return _inside(real, folder) and stat.S_ISREG(os.stat(real).st_mode)
    except OSError:
        return False


def uploaded_file(path: str, upload_dir: str) -> Path:
    """The path of a file Gradio received as an upload; InvalidInput for anything else, such as a forged path."""
    if "\x00" in path or not is_uploaded(path, upload_dir):
        raise InvalidInput(f"{Path(path).name}: {NOT_UPLOADED}")
    return Path(path)


def check_reference(reference: dict[str, Any], mount: GradioMount) -> None:
    """Raise RefusedBody unless the reference names a regular file uploaded to this page, and no URL."""
    if not mount.takes_files:
        raise RefusedBody(400, "this page takes no files: a request may not name one")
    path = reference.get("path")
    # One message for missing, outside, a folder or a pipe: the answer must not say which it was.
    if not isinstance(path, str) or not os.path.isabs(path) or "\x00" in path or ".." in path.split("/"):
        raise RefusedBody(400, NOT_UPLOADED)
    if not _inside(os.path.normpath(path), mount.upload_dir):  # checked before touching the file system
        raise RefusedBody(400, NOT_UPLOADED)
    if not is_uploaded(path, mount.upload_dir):
        raise RefusedBody(400, NOT_UPLOADED)
    url = reference.get("url")
    # Gradio's web client sends the app's own link to the uploaded file; any other URL is refused.
    if url is not None and not _own_link(url, path, mount):
        raise RefusedBody(400, "a file reference may not carry a URL other than this page's link to the file")


def _own_link(url: Any, path: str, mount: GradioMount) -> bool:
    if not isinstance(url, str):
        return False
    parts = urlsplit(url)
    return (parts.scheme in ("", "http", "https") and not parts.query and not parts.fragment
            and unquote(parts.path).endswith(f"{mount.prefix}{FILE_ROUTE}{path}"))  # behind a proxy's path prefix too


def check_body(body: bytes, mount: GradioMount) -> None:
    """Raise RefusedBody unless the body is empty, or JSON whose file references all pass ``check_reference``."""
    if not body.strip():
        return
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise RefusedBody(415, "send JSON: requests to this page carry no other body") from exc
    for reference in file_references(data):
        check_reference(reference, mount)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):  # two parsers might pick different values for a repeated key
        raise ValueError("a repeated key")
    return found


def check_upload_route(route: str, mount: GradioMount) -> bool:
    """Whether the route takes raw upload bytes; raise RefusedBody where this page has nothing to upload to."""
    route = unquote(route).rstrip("/")
    if route.endswith(UPLOAD_ROUTE):
        if not mount.takes_files:
            raise RefusedBody(403, "this page takes no uploads")
        return True
    if route.endswith(RECORDING_ROUTE):
        if not mount.takes_recordings:
            raise RefusedBody(403, "this page takes no recordings")
        return True
    return False


class PayloadGuard:
    """ASGI middleware: reads each request to a mounted Gradio app and refuses file references and URLs."""

    def __init__(self, app: ASGIApp, routes: Sequence[BaseRoute]) -> None:
        self.app = app
        self.routes = routes
        self._mounts: list[GradioMount] | None = None

    def mounts(self) -> list[GradioMount]:
        """The mounted Gradio apps, found on the first request (the app is complete by then)."""
        if self._mounts is None:
            self._mounts = gradio_mounts(self.routes)
        return self._mounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = [(m, r) for m in self.mounts() if (r := m.route(scope["path"])) is not None]
        if not found:
            await self.app(scope, receive, send)
            return
        mount, route = found[0]
        try:
            if check_upload_route(route, mount):
                await self.app(scope, receive, send)  # bytes only: Gradio writes them to its own folder
                return
            body = await _read_body(receive)
            if body is None:
                return  # the client went away
            check_body(body, mount)
        except RefusedBody as refused:
            await _refuse(send, refused)
            return
        await self.app(scope, _replay(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise RefusedBody(413, f"the request body is over {MAX_BODY // 2**20} MB")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replaying() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replaying


async def _refuse(send: Send, refused: RefusedBody) -> None:
    body = json.dumps({"detail": str(refused)}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store")]
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def guard_gradio_payloads(app: Any) -> None:
    """Put ``PayloadGuard`` in front of every Gradio app mounted on ``app``, and turn on Gradio's own check."""
    check_gradio_paths(app.routes)
    app.add_middleware(PayloadGuard, routes=app.routes)
