"""Email messages (EML): headers and body, then each text attachment as a further page."""

from __future__ import annotations

import email
import email.errors
import email.header
from email import policy
from email.message import EmailMessage
from pathlib import Path, PurePath
from typing import cast

from ingest.document import Page, ParsedDocument, Section
from ingest.errors import SkipFile
from ingest.parsers.encoding import decode_text
from ingest.parsers.html_doc import html_to_markdown, soup_text
from ingest.parsers.markdown_doc import markdown_page
from ingest.parsers.pagebuild import HEADING_SEPARATOR, PageBuilder
from ingest.parsers.sheets import csv_page
from ingest.settings import IngestSettings

SUMMARY_HEADERS = ("From", "To", "Cc", "Date", "Subject")
TEXT_ATTACHMENT_SUFFIXES = frozenset(
    {".txt", ".text", ".log", ".rst", ".org", ".adoc", ".md", ".markdown", ".csv", ".tsv", ".html", ".htm", ".xhtml"}
)
_ENCRYPTED_TYPES = ("multipart/encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime")
_MAX_NESTING = 3  # forwarded messages inside forwarded messages


def parse_eml(path: Path, settings: IngestSettings) -> ParsedDocument:
    """Page 1 is the header summary and body; each readable attachment adds a page."""
    message = _load(path.read_bytes())
    if message.get_content_type() in _ENCRYPTED_TYPES:
        raise SkipFile("encrypted email (S/MIME or PGP): it cannot be read without the key")
    pages = _message_pages(message, label="", depth=0)
    subject = _header(message, "Subject")
    return ParsedDocument([p for p in pages if p.text.strip()], title=subject or None)


def _load(data: bytes) -> EmailMessage:
    """Parse the message; files saved as UTF-16 are decoded to text first."""
    if b"\x00" in data[:256]:
        message = email.message_from_string(decode_text(data), policy=policy.default)
    else:
        message = email.message_from_bytes(data, policy=policy.default)
    return cast(EmailMessage, message)  # policy.default builds EmailMessage objects


def _message_pages(message: EmailMessage, label: str, depth: int) -> list[Page]:
    """The summary page of ``message`` followed by its attachment pages."""
    subject = _header(message, "Subject")
    heading = HEADING_SEPARATOR.join(h for h in (label, subject) if h)
    pages: list[Page] = []
    unread: list[str] = []
    for part in message.iter_attachments():
        name = part.get_filename() or ""
        if part.get_content_type() == "message/rfc822" and depth < _MAX_NESTING:
            inner = part.get_content()
            pages.extend(_message_pages(inner, f"Attachment: {name or 'forwarded message'}", depth + 1))
        elif (page := _attachment_page(part, name)) is not None:
            pages.append(page)
        else:
            unread.append(name or part.get_content_type())
    builder = PageBuilder()
    lines = [f"{h}: {v}" for h in SUMMARY_HEADERS if (v := _header(message, h))]
    if unread:
        lines.append("Attachments not read: " + ", ".join(unread))
    builder.add("\n".join(lines), heading)
    builder.add(_body_text(message), heading)
    return [builder.build(), *pages]


def _header(message: EmailMessage, name: str) -> str:
    """A header as readable text; malformed headers fall back to their raw, decoded value."""
    try:
        value = message.get(name)
        return " ".join(str(value).split()) if value is not None else ""
    except (ValueError, IndexError, TypeError, email.errors.HeaderParseError):
        raw = str(next((v for k, v in message.raw_items() if k.lower() == name.lower()), ""))
    try:
        return " ".join(str(email.header.make_header(email.header.decode_header(raw))).split())
    except (LookupError, UnicodeError, email.errors.HeaderParseError):
        return " ".join(raw.split())  # an unknown charset: show the header as it was sent


def _body_text(message: EmailMessage) -> str:
    """The plain-text body, else the HTML body as text."""
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None or not isinstance(part, EmailMessage):
        return ""
    text = _part_text(part)
    return soup_text(text) if part.get_content_subtype() == "html" else text


def _part_text(part: EmailMessage) -> str:
    """Decoded text of a part, even when it names a charset Python does not know."""
    try:
        content = part.get_content()
    except (LookupError, UnicodeError):
        content = None  # unknown charset: detect it from the bytes below
    if isinstance(content, str):
        return content.replace("\r\n", "\n")
    payload = part.get_payload(decode=True)
    return decode_text(payload if isinstance(payload, bytes) else b"", declared=part.get_content_charset())


def _attachment_page(part: EmailMessage, name: str) -> Page | None:
    """A page for a text attachment, every section headed 'Attachment: name'; None if not text."""
    suffix = PurePath(name).suffix.lower()
    ctype = part.get_content_type()
    if part.get_content_maintype() != "text" and suffix not in TEXT_ATTACHMENT_SUFFIXES:
        return None
    try:
        text = _part_text(part)
    except SkipFile:
        return None  # binary content behind a text name: listed as not read
    if suffix in (".html", ".htm", ".xhtml") or ctype == "text/html":
        inner = markdown_page(html_to_markdown(text))
    elif suffix in (".md", ".markdown") or ctype == "text/markdown":
        inner = markdown_page(text)
    elif suffix in (".csv", ".tsv") or ctype in ("text/csv", "text/tab-separated-values"):
        inner = csv_page(text, tab_separated=suffix == ".tsv" or ctype == "text/tab-separated-values")
    else:
        inner = Page(None, text)
    heading = f"Attachment: {name or ctype}"
    sections = [
        Section(heading + (HEADING_SEPARATOR + s.heading if s.heading else ""), s.start, s.end)
        for s in inner.iter_sections()
    ]
    return Page(None, inner.text, sections)
