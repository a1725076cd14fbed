"""The app's plain pages (tokens, password, errors) share this ``<head>`` and look: no scripts, phone-ready.

The error pages are here too: browsers get them for every refusal and error outside the API.
"""

from __future__ import annotations

from html import escape
from http import HTTPStatus

from fastapi.responses import HTMLResponse

STYLE = """
body { font-family: system-ui, sans-serif; margin: 0; color: #1f2937; background: #f4f5f7; }
main { max-width: 52rem; margin: 2rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 10px;
       box-shadow: 0 2px 12px rgba(0,0,0,.08); overflow-wrap: break-word; }
h1 { font-size: 1.35rem; margin-top: 0; } table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem .5rem; border-bottom: 1px solid #e5e7eb; font-size: .9rem; }
.table-scroll { overflow-x: auto; }
code.secret { display: block; background: #ecfdf5; padding: .6rem; border-radius: 6px; word-break: break-all; }
.error { background: #fef2f2; color: #991b1b; padding: .5rem .6rem; border-radius: 6px; }
.new { background: #ecfdf5; padding: .75rem; border-radius: 6px; }
input[type=text], input[type=password] { padding: .45rem; border: 1px solid #d1d5db; border-radius: 6px;
       width: 18rem; max-width: 100%; box-sizing: border-box; }
button { padding: .45rem .8rem; border: 0; border-radius: 6px; background: #2563eb; color: #fff; cursor: pointer; }
button.revoke { background: #b91c1c; } form.inline { display: inline; }
:focus-visible { outline: 2px solid #2563eb; outline-offset: 2px; }
@media (max-width: 40rem) { main { margin: 0; padding: 1rem; border-radius: 0; box-shadow: none; } }
"""
# Every page of the app says so: without it a phone lays the page out 980 px wide and shrinks it.
VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'
NO_STORE = {"cache-control": "no-store"}
ICON = '<link rel="icon" href="/favicon.ico" sizes="any">'


def head(title: str, style: str = STYLE) -> str:
    """``<head>`` for a page titled ``title · Enclave``: charset, viewport, the app's icon and ``style``."""
    return (f'<head><meta charset="utf-8">{VIEWPORT}<title>{escape(title)} · Enclave</title>{ICON}'
            f"<style>{style}</style></head>")


def error_page_html(status: int, message: str) -> str:
    """The app's page for an error status: what happened, in words, and a way back."""
    title = HTTPStatus(status).phrase
    back = ('<a href="/login">Sign in</a>' if status == 401 else '<a href="/">Back to Enclave</a>')
    return (f'<!doctype html><html lang="en">{head(title)}<body><main><h1>{status} · {escape(title)}</h1>'
            f'<p class="error" role="alert">{escape(message)}</p><p>{back}</p></main></body></html>')


def error_page(status: int, message: str) -> HTMLResponse:
    """``error_page_html`` as a response that no cache keeps."""
    return HTMLResponse(error_page_html(status, message), status_code=status, headers=NO_STORE)
