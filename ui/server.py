"""Start the web app: first-start admin, the address printed, a browser opened on desktops."""

from __future__ import annotations

import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Callable
from typing import Any

from assistant.data_dir import loose_permissions
from assistant.errors import EnclaveError
from assistant.services import Services
from assistant.settings import WebSettings

log = logging.getLogger(__name__)

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def has_display() -> bool:
    """Whether a browser window could be shown here (a desktop session, not a bare server)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def address(services: Services) -> str:
    """The URL users open."""
    web = services.settings.web
    scheme = "https" if web.tls_certfile else "http"
    host = "127.0.0.1" if web.host in ("0.0.0.0", "::") else web.host
    return f"{scheme}://{host}:{web.port}/"


def warnings(services: Services) -> list[str]:
    """Configuration that would stop users from signing in, and data that other users of the machine can read."""
    web = services.settings.web
    found = loose_permissions(services.settings)
    if web.cookie_secure and not web.tls_certfile and web.host not in LOOPBACK:
        found.append("browsers keep secure cookies only over HTTPS: set web.tls_certfile/tls_keyfile, put a TLS "
                     "proxy in front, or set web.cookie_secure = false on a trusted network")
    if web.host in ("0.0.0.0", "::") and not web.public_url and not web.allowed_hosts:
        found.append("the app answers only as loopback names, IP addresses and this machine's name: set "
                     "web.public_url (or web.allowed_hosts) to the name users open")
    return found


def _warm_up(services: Services) -> None:
    """Load the models in the background, so the first question after a start does not wait for them.

    The search side (embedding model, indexes, spelling dictionary) takes about 7 s on two cores;
    choosing the answering model and loading the embedded one about 1.7 s more.
    """
    try:
        services.retriever.warm_up()
        services.answers.warm_up()
    except EnclaveError as exc:  # the first question reports it to the user
        log.warning("could not load the models at start: %s", exc)


def start_warm_up(services: Services) -> None:
    """Load the models on a background thread (``run.py serve`` and ``desktop``)."""
    threading.Thread(target=_warm_up, args=(services,), name="warm-up", daemon=True).start()


def serve(services: Services, open_browser: bool, say: Callable[[str], None]) -> None:
    """Run the web app until interrupted."""
    import uvicorn

    from ui.app import build_app

    web = services.settings.web
    generated = services.web.accounts.ensure_admin(os.environ.get("ENCLAVE_ADMIN_PASSWORD"))
    if generated:
        say(f"Created user 'admin' with password: {generated}  (shown once; `run.py users set-password admin`)")
    for warning in warnings(services):
        say(f"warning: {warning}")
    app = build_app(services)  # applies the settings admins saved, so warm-up loads the model they chose
    start_warm_up(services)
    url = address(services)
    say(f"Enclave is serving at {url}")
    if open_browser and web.open_browser and has_display():
        threading.Timer(1.5, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=web.host, port=web.port, ssl_certfile=web.tls_certfile, ssl_keyfile=web.tls_keyfile,
                **uvicorn_options(web))


def uvicorn_options(web: WebSettings) -> dict[str, Any]:
    """How uvicorn serves the app (the tests start it the same way)."""
    # X-Forwarded-For/-Proto are believed from web.trusted_proxies only (uvicorn would trust 127.0.0.1 by
    # default), so no client picks its own address (the sign-in throttle's key) or scheme.
    return {"log_level": "warning", "server_header": False, "proxy_headers": bool(web.trusted_proxies),
            "forwarded_allow_ips": web.trusted_proxies or None}
