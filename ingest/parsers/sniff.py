"""Whether a file's first bytes are the format its name claims, and what they are when they are not.

Each format in ``ingest.parsers.formats`` names one of the tests here (``is_pdf``, ``is_zip``,
``is_image``, ``is_text``) as its ``sniff``; the messages say what the content really is, so an
admin reading a skipped file's reason knows what to do with it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ingest.errors import SkipFile

HEAD_BYTES = 8192
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_DOCUMENTS = frozenset({"DOCX", "XLSX", "PPTX", "PDF", "ODT", "ODS", "ODP", "EPUB", "RTF", "DOC", "XLS", "PPT"})
_EXECUTABLES = frozenset({"ELF", "EXE", "DLL", "DEX", "CLASS", "WASM", "MACHO"})
_ARCHIVES = frozenset(
    {"ZIP", "TAR", "GZ", "BZ2", "XZ", "7Z", "RAR", "ZST", "LZ", "LZ4", "LZO", "BR", "CAB", "DEB", "RPM", "AR", "Z"}
)
# Extensions read out letter by letter that start with a vowel sound ("an MP3").
_SAID_WITH_AN = frozenset({"MP3", "MP4", "M4A", "M4V", "MKV", "MOV", "RTF", "SQLITE", "FLV", "SWF", "XZ", "LZ", "LZO"})


def read_head(path: Path) -> bytes:
    """The first bytes of ``path``, enough for every test here."""
    with path.open("rb") as fh:
        return fh.read(HEAD_BYTES)


def is_pdf(head: bytes) -> bool:
    """A PDF header; readers accept junk before it, and the spec allows it within the first KiB."""
    return b"%PDF-" in head[:1024]


def is_zip(head: bytes) -> bool:
    """A zip container, as Office Open XML and OpenDocument files are."""
    return head.startswith(_ZIP_MAGIC)


def is_image(head: bytes) -> bool:
    """Any image format that ``filetype`` knows."""
    kind = guess(head)
    return kind is not None and str(kind.mime).startswith("image/")


def is_text(head: bytes) -> bool:
    """No known binary signature: text in some encoding (decoding it is the parser's job)."""
    return guess(head) is None and not head.startswith(OLE_MAGIC)


def guess(head: bytes) -> Any:
    """The ``filetype`` match for ``head``, or None."""
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


def mismatch(head: bytes, label: str) -> SkipFile:
    """The refusal for content that is not ``label`` ("a PDF"), saying what it is when that is known."""
    kind = guess(head)
    if kind is not None:
        return SkipFile(f"content is {describe_kind(kind)}, not {label}")
    if head.startswith(OLE_MAGIC):
        return SkipFile(f"content is an old-format Office file (.doc/.xls/.ppt/.msg), not {label}")
    return SkipFile(f"content is not {label}")


def is_encrypted_ooxml(path: Path) -> bool:
    """Office saves password-protected DOCX/XLSX/PPTX as an OLE file with an EncryptionInfo stream."""
    marker = "EncryptionInfo".encode("utf-16-le")
    tail = b""
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            if marker in tail + block:
                return True
            tail = block[-len(marker) :]
    return False
