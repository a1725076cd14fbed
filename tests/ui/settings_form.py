"""Drive the admin Settings tab over HTTP as a browser does: read the form from the page's config, load, save."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

PREFIX = "/admin"


def page_config(client: httpx.Client) -> dict[str, Any]:
    """The admin page's Gradio config: its components and events."""
    response = client.get(f"{PREFIX}/config")
    assert response.status_code == 200, response.text
    config: dict[str, Any] = response.json()
    return config


def components_by_elem_id(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The page's components that carry an elem_id, by it."""
    return {c["props"]["elem_id"]: c for c in config["components"] if c.get("props", {}).get("elem_id")}


def _event(config: dict[str, Any], side: str) -> dict[str, Any]:
    """The tab's load event (``side`` "outputs") or its Save event ("inputs"): those that touch the backend choice."""
    backend = components_by_elem_id(config)["backend"]["id"]
    return next(d for d in config["dependencies"] if backend in d[side])


def call(client: httpx.Client, fn_index: int, data: list[Any], timeout: float = 60,
         session: str | None = None) -> dict[str, Any]:
    """Run one page event through Gradio's queue (in ``session``, as one open page would); its completion message."""
    session = session or secrets.token_hex(8)
    body = {"data": data, "event_data": None, "fn_index": fn_index, "trigger_id": None, "session_hash": session}
    joined = client.post(f"{PREFIX}/gradio_api/queue/join", json=body)
    assert joined.status_code == 200, joined.text
    with client.stream("GET", f"{PREFIX}/gradio_api/queue/data", params={"session_hash": session},
                       timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message: dict[str, Any] = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError("the event never completed")


def shown_values(client: httpx.Client, config: dict[str, Any]) -> dict[int, Any]:
    """What the Settings tab shows when it loads, by component id."""
    load = _event(config, "outputs")
    done = call(client, load["id"], [])
    assert done["success"], done
    values = [v["value"] if isinstance(v, dict) and "value" in v else v for v in done["output"]["data"]]
    return dict(zip(load["outputs"], values, strict=True))


def save_settings(client: httpx.Client, changes: dict[str, Any]) -> dict[str, Any]:
    """Load the tab, change the fields named by elem_id, press Save; the event's completion message."""
    config = page_config(client)
    ids = {elem_id: c["id"] for elem_id, c in components_by_elem_id(config).items()}
    values = shown_values(client, config)
    values.update({ids[elem_id]: value for elem_id, value in changes.items()})
    save = _event(config, "inputs")
    return call(client, save["id"], [values[i] for i in save["inputs"]])
