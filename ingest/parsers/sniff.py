"""Map a file name to a format and check that the bytes really are that format."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.errors import SkipFile

FORMAT_BY_SUFFIX: dict[str, str] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".rst": "text",
    ".org": "text",
    ".adoc": "text",
    ".eml": "eml",
    **dict.fromkeys((".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif"), "image"),
}

# What a user would call each format in a sentence: "content is a PNG image, not <this>".
FORMAT_NAMES = {
    "pdf": "a PDF",
    "docx": "a DOCX file",
    "pptx": "a PPTX file",
    "xlsx": "an XLSX file",
    "csv": "a CSV file",
    "html": "an HTML file",
    "markdown": "a Markdown file",
    "text": "a text file",
    "eml": "an email",
    "image": "an image",
}

_LEGACY_HINTS = {
    ".doc": "old Word format: save it as .docx",
    ".xls": "old Excel format: save it as .xlsx",
    ".ppt": "old PowerPoint format: save it as .pptx",
    ".msg": "Outlook message: save it as .eml",
}
_OFFICE = ("docx", "xlsx", "pptx")
_DOCUMENTS = frozenset({"DOCX", "XLSX", "PPTX", "PDF", "ODT", "ODS", "ODP", "EPUB", "RTF", "DOC", "XLS", "PPT"})
_EXECUTABLES = frozenset({"ELF", "EXE", "DLL", "DEX", "CLASS", "WASM", "MACHO"})
_ARCHIVES = frozenset(
    {"ZIP", "TAR", "GZ", "BZ2", "XZ", "7Z", "RAR", "ZST", "LZ", "LZ4", "LZO", "BR", "CAB", "DEB", "RPM", "AR", "Z"}
)
# Extensions read out letter by letter that start with a vowel sound ("an MP3").
_SAID_WITH_AN = frozenset({"MP3", "MP4", "M4A", "M4V", "MKV", "MOV", "RTF", "SQLITE", "FLV", "SWF", "XZ", "LZ", "LZO"})
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_HEAD_BYTES = 8192


def detect_format(path: Path) -> str:
    """The parser format for ``path``; raises SkipFile when unsupported or mislabelled."""
    suffix = path.suffix.lower()
    fmt = FORMAT_BY_SUFFIX.get(suffix)
    if fmt is None:
        hint = _LEGACY_HINTS.get(suffix)
        shown = suffix or "(no extension)"
        raise SkipFile(f"unsupported file type {shown}" + (f" ({hint})" if hint else ""))
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
    if fmt == "pdf":
        _check_pdf(head)
    elif fmt in _OFFICE:
        _check_office(path, head, fmt)
    elif fmt == "image":
        _check_image(head)
    else:
        _check_text(head, fmt)
    return fmt


def _guess(head: bytes) -> Any:
    import filetype

    return filetype.guess(head)


def describe_kind(kind: Any) -> str:
    """'a PNG image', 'an ELF executable' ... for a ``filetype`` match."""
    ext = str(kind.extension).upper()
    top = str(kind.mime).split("/")[0]
    if ext in _DOCUMENTS:
        noun = "document"
    elif top == "image":
        noun = "image"
    elif top in ("audio", "video", "font"):
        noun = f"{top} file"
    elif ext in _EXECUTABLES:
        noun = "executable"
    elif ext in _ARCHIVES:
        noun = "archive"
    else:
        noun = "file"
    article = "an" if ext[0] in "AEIOU" or ext in _SAID_WITH_AN else "a"
    return f"{article} {ext} {noun}"


def _mismatch(head: bytes, fmt: str) -> SkipFile:
    kind = _guess(head)
    if kind is not None:
        return SkipFile(f"content is {describe_kind(kind)}, not {FORMAT_NAMES[fmt]}")
    if head.startswith(_OLE_MAGIC):
        return SkipFile(f"content is an old-format Office file (.doc/.xls/.ppt/.msg), not {FORMAT_NAMES[fmt]}")
    return SkipFile(f"content is not {FORMAT_NAMES[fmt]}")


def _check_pdf(head: bytes) -> None:
    # Readers accept junk before the header; the spec allows it within the first KiB.
    if b"%PDF-" not in head[:1024]:
        raise _mismatch(head, "pdf")


def _check_office(path: Path, head: bytes, fmt: str) -> None:
    if head.startswith(_OLE_MAGIC):
        if _is_encrypted_ooxml(path):
            raise SkipFile(f"password-protected {fmt.upper()} file")
        raise _mismatch(head, fmt)
    if not head.startswith(_ZIP_MAGIC):
        raise _mismatch(head, fmt)
    kind = _guess(head)
    if kind is not None and kind.extension in _OFFICE and kind.extension != fmt:
        raise SkipFile(f"content is {describe_kind(kind)}, not {FORMAT_NAMES[fmt]}")


def _is_encrypted_ooxml(path: Path) -> bool:
    """Office saves password-protected DOCX/XLSX/PPTX as an OLE file with an EncryptionInfo stream."""
    marker = "EncryptionInfo".encode("utf-16-le")
    tail = b""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            if marker in tail + block:
                return True
            tail = block[-len(marker) :]
    return False


def _check_image(head: bytes) -> None:
    kind = _guess(head)
    if kind is None or not str(kind.mime).startswith("image/"):
        raise _mismatch(head, "image")


def _check_text(head: bytes, fmt: str) -> None:
    if _guess(head) is not None or head.startswith(_OLE_MAGIC):
        raise _mismatch(head, fmt)
