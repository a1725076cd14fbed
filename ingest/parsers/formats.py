"""Every document format Enclave reads, in one list: ``FORMATS``.

A format is one ``FormatSpec``: its name, how an admin is told about it, its file suffixes,
how its content is recognised and the parser that reads it. The scanner, the upload check,
content sniffing, skip reasons and parser dispatch all read the registry, so adding a format
is one parser module and one line below (docs/extending.md walks through it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.document import ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers import sniff
from ingest.parsers.eml import parse_eml
from ingest.parsers.html_doc import parse_html
from ingest.parsers.images import parse_image
from ingest.parsers.markdown_doc import parse_markdown
from ingest.parsers.pdf import parse_pdf
from ingest.parsers.plain import parse_text
from ingest.parsers.sheets import parse_csv, parse_xlsx
from ingest.parsers.slides import parse_pptx
from ingest.parsers.word import parse_docx
from ingest.settings import IngestSettings

Parser = Callable[[Path, IngestSettings], ParsedDocument]
"""Reads one file into pages; raises SkipFile with a one-line reason when it cannot."""

Sniff = Callable[[bytes], bool]
"""Whether a file's first bytes (``sniff.HEAD_BYTES``) are this format."""

# Formats people still have that Enclave does not read, with what to do instead.
_LEGACY_HINTS = {
    ".doc": "old Word format: save it as .docx",
    ".xls": "old Excel format: save it as .xlsx",
    ".ppt": "old PowerPoint format: save it as .pptx",
    ".msg": "Outlook message: save it as .eml",
}


@dataclass(frozen=True)
class FormatSpec:
    """Everything the rest of Enclave needs to know about one document format.

    ``parse`` and ``sniff`` must be module-level functions: files are parsed in child
    processes, which receive the registry by pickling.
    """

    name: str
    """Short key, as ``filetype`` names the format where it knows it ("docx")."""
    label: str
    """The format in a sentence, for skip reasons: "content is a PNG image, not <label>"."""
    suffixes: tuple[str, ...]
    """Lower-case file suffixes with their dot (".htm")."""
    sniff: Sniff
    parse: Parser
    office_zip: bool = False
    """An Office zip container: a password-protected copy (an OLE file) is named as such, and a
    file holding one of the other Office formats is refused with what it really is."""


class FormatRegistry:
    """The formats Enclave reads, looked up by suffix or by name."""

    def __init__(self, specs: Iterable[FormatSpec]) -> None:
        self.specs = tuple(specs)
        self._by_name: dict[str, FormatSpec] = {}
        self._by_suffix: dict[str, FormatSpec] = {}
        for spec in self.specs:
            if spec.name in self._by_name:
                raise ValueError(f"two formats are named {spec.name!r}")
            self._by_name[spec.name] = spec
            for suffix in spec.suffixes:
                if not suffix.startswith(".") or suffix != suffix.lower():
                    raise ValueError(f"format {spec.name!r}: suffix {suffix!r} is not lower case with a dot")
                if suffix in self._by_suffix:
                    owner = self._by_suffix[suffix].name
                    raise ValueError(f"suffix {suffix!r} is claimed by {owner!r} and {spec.name!r}")
                self._by_suffix[suffix] = spec
        self.suffixes: frozenset[str] = frozenset(self._by_suffix)

    def with_formats(self, *specs: FormatSpec) -> FormatRegistry:
        """This registry plus ``specs`` (a deployment's or a test's own formats)."""
        return FormatRegistry(self.specs + specs)

    def for_suffix(self, suffix: str) -> FormatSpec:
        """The format files ending in ``suffix`` hold; raises SkipFile when none does."""
        spec = self._by_suffix.get(suffix.lower())
        if spec is None:
            hint = _LEGACY_HINTS.get(suffix.lower())
            shown = suffix.lower() or "(no extension)"
            raise SkipFile(f"unsupported file type {shown}" + (f" ({hint})" if hint else ""))
        return spec

    def detect(self, path: Path) -> FormatSpec:
        """The format of ``path`` by suffix, content checked; raises SkipFile when unsupported or mislabelled."""
        spec = self.for_suffix(path.suffix)
        head = sniff.read_head(path)
        if spec.office_zip and head.startswith(sniff.OLE_MAGIC) and sniff.is_encrypted_ooxml(path):
            raise SkipFile(f"password-protected {spec.name.upper()} file")
        if not spec.sniff(head):
            raise sniff.mismatch(head, spec.label)
        if spec.office_zip:
            self._check_other_office(head, spec)
        return spec

    def _check_other_office(self, head: bytes, spec: FormatSpec) -> None:
        """A .docx that is really an XLSX (all are zips) is refused saying so, not parsed as garbage."""
        kind = sniff.guess(head)
        other = self._by_name.get(str(kind.extension)) if kind is not None else None
        if other is not None and other.office_zip and other is not spec:
            raise SkipFile(f"content is {sniff.describe_kind(kind)}, not {spec.label}")


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")

FORMATS = FormatRegistry([
    FormatSpec("pdf", "a PDF", (".pdf",), sniff.is_pdf, parse_pdf),
    FormatSpec("docx", "a DOCX file", (".docx",), sniff.is_zip, parse_docx, office_zip=True),
    FormatSpec("pptx", "a PPTX file", (".pptx",), sniff.is_zip, parse_pptx, office_zip=True),
    FormatSpec("xlsx", "an XLSX file", (".xlsx", ".xlsm"), sniff.is_zip, parse_xlsx, office_zip=True),
    FormatSpec("csv", "a CSV file", (".csv", ".tsv"), sniff.is_text, parse_csv),
    FormatSpec("html", "an HTML file", (".html", ".htm", ".xhtml"), sniff.is_text, parse_html),
    FormatSpec("markdown", "a Markdown file", (".md", ".markdown"), sniff.is_text, parse_markdown),
    FormatSpec("text", "a text file", (".txt", ".text", ".log", ".rst", ".org", ".adoc"), sniff.is_text, parse_text),
    FormatSpec("eml", "an email", (".eml",), sniff.is_text, parse_eml),
    FormatSpec("image", "an image", _IMAGE_SUFFIXES, sniff.is_image, parse_image),
])
"""The formats Enclave reads; add a line here for a new one."""
