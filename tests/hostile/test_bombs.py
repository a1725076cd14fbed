"""Decompression and parser bombs are refused with a clear reason, quickly and in bounded memory.

Each bomb is a few KB to a few MB on disk. It is parsed in a child process under the
ingest settings' address-space cap (``ingest.worker_memory_mb``), as the pipeline runs
parsers, and must come back as a skip with a reason that names the problem.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from assistant.errors import SkipFile
from assistant.settings import IngestSettings
from ingest.parser_process import init_parser_process
from ingest.parsers import parse_file
from ingest.pipeline import parser_context
from tests.ingest.test_parsers import make_docx, make_pptx, make_xlsx

SECONDS = 30  # every bomb here is refused in well under a second; the cap only stops a regression hanging CI


def refused(path: Path, settings: IngestSettings | None = None) -> tuple[str, float]:
    """Parse in a capped child process; the skip reason and the seconds it took (fails on anything else)."""
    from pebble import ProcessPool

    settings = settings or IngestSettings()  # type: ignore[call-arg]
    started = time.monotonic()
    # Started from the pipeline's fork server, as in the app: a fork of this test process, which
    # holds models loaded by earlier tests, would begin near the cap and fail every file.
    with ProcessPool(max_workers=1, initializer=init_parser_process, initargs=(settings.worker_memory_mb,),
                     context=parser_context()) as pool:
        future = pool.schedule(parse_file, args=(path, settings), timeout=SECONDS)
        with pytest.raises(SkipFile) as caught:
            future.result()
    return str(caught.value), time.monotonic() - started


def png_header_only(width: int, height: int) -> bytes:
    """A valid PNG whose header claims ``width`` x ``height`` pixels, with almost no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(width + 1)))
            + chunk(b"IEND", b""))


def zero_member(path: Path, name: str, megabytes: int) -> None:
    """Add a member of zeros that deflates about 1000:1."""
    with (zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
          archive.open(name, "w", force_zip64=True) as member):
        for _ in range(megabytes):
            member.write(bytes(1 << 20))


@pytest.mark.parametrize("make", [make_docx, make_pptx, make_xlsx])
def test_office_zip_bombs_are_refused_without_being_inflated(tmp_path: Path, make: Callable[[Path], Path]) -> None:
    path = make(tmp_path / f"bomb.{make.__name__.removeprefix('make_')}")
    zero_member(path, "docProps/padding.xml", 1024)  # 1 GiB of zeros in about 1 MB
    assert path.stat().st_size < 2 * 2**20
    reason, seconds = refused(path)
    assert reason.startswith("zip bomb: expands to 10") and "over the 500 MB limit" in reason
    assert seconds < SECONDS


def test_a_zip_of_many_small_members_is_refused(tmp_path: Path) -> None:
    path = make_docx(tmp_path / "parts.docx")
    with zipfile.ZipFile(path, "a") as archive:
        for n in range(50_001):
            archive.writestr(f"word/parts/p{n}.xml", b"")
    reason, _ = refused(path)
    assert reason.startswith("zip bomb: 50") and reason.endswith(" parts inside one DOCX file")


def test_xml_entity_expansion_inside_a_docx_is_refused(tmp_path: Path) -> None:
    source = make_docx(tmp_path / "source.docx")
    entities = "".join(f'<!ENTITY l{i} "{(f"&l{i - 1};" if i else "lol") * 10}">' for i in range(10))
    doctype = f'<?xml version="1.0"?><!DOCTYPE d [{entities}]>'
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(tmp_path / "laughs.docx", "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "word/document.xml":
                body = data.decode().split("?>", 1)[1].replace("Welcome to the company.", "&l9;")
                data = (doctype + body).encode()
            out.writestr(item, data)
    reason, _ = refused(tmp_path / "laughs.docx")
    assert reason.startswith("could not parse .docx file") and "entity" in reason.lower()


@pytest.mark.parametrize("suffix", [".png", ".gif", ".tiff"])
def test_images_with_huge_dimensions_are_refused_before_decoding(tmp_path: Path, suffix: str) -> None:
    from PIL import Image

    path = tmp_path / f"huge{suffix}"
    if suffix == ".png":
        path.write_bytes(png_header_only(60_000, 60_000))
    else:  # a real small image whose header is rewritten to claim 60,000 x 60,000 pixels
        Image.new("L", (8, 8)).save(path)
        data = bytearray(path.read_bytes())
        if suffix == ".gif":
            data[6:10] = struct.pack("<HH", 60_000, 60_000)
            data[data.index(b",") + 5 : data.index(b",") + 9] = struct.pack("<HH", 60_000, 60_000)
        else:
            data = bytearray(_tiff_claiming(path.read_bytes(), 60_000))
        path.write_bytes(bytes(data))
    reason, seconds = refused(path)
    assert "too large to decode safely" in reason or "corrupt or truncated image" in reason, reason
    assert seconds < SECONDS


def _tiff_claiming(data: bytes, size: int) -> bytes:
    """Rewrite the width and length tags (256, 257) of a little-endian baseline TIFF."""
    out = bytearray(data)
    assert out[:2] == b"II"
    ifd = struct.unpack_from("<I", out, 4)[0]
    for n in range(struct.unpack_from("<H", out, ifd)[0]):
        at = ifd + 2 + 12 * n
        tag, kind = struct.unpack_from("<HH", out, at)
        if tag in (256, 257):
            struct.pack_into("<HHII", out, at, tag, 4, 1, size) if kind == 4 else struct.pack_into(
                "<HHIHH", out, at, tag, 3, 1, size, 0)
    return bytes(out)


@pytest.mark.parametrize("inner", ["<div>", "<b><i>", "<span><table>"])
def test_deeply_nested_html_is_refused_quickly(tmp_path: Path, inner: str) -> None:
    path = tmp_path / "deep.html"
    path.write_text(f"<html><body>{inner * 100_000}deep text</body></html>")
    reason, seconds = refused(path)
    assert reason == "HTML nested over 1000 elements deep: refused as a likely parser bomb"
    assert seconds < 10  # before the guard, 200,000 levels ran into the 120 s parse limit


def test_deeply_nested_html_email_body_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.eml"
    body = "<div>" * 50_000 + "hello" + "</div>" * 50_000
    path.write_text(f"Subject: deep\nMIME-Version: 1.0\nContent-Type: text/html\n\n{body}\n")
    reason, seconds = refused(path)
    assert "nested over 1000 elements deep" in reason and seconds < 10


def test_ordinary_nesting_still_parses(tmp_path: Path) -> None:
    page = "<div>" * 200 + "<p>Parking permits are issued on Mondays.</p>" + "</div>" * 200
    (tmp_path / "ok.html").write_text(f"<html><body><h1>Parking</h1>{page}</body></html>")
    doc = parse_file(tmp_path / "ok.html", IngestSettings())  # type: ignore[call-arg]
    assert "Parking permits are issued on Mondays." in doc.pages[0].text


def test_deeply_nested_multipart_email_is_skipped_with_a_reason(tmp_path: Path) -> None:
    body = "Content-Type: text/plain\n\nhello deep\n"
    for i in range(2000):
        body = f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n{body}\n--b{i}--\n'
    (tmp_path / "deep.eml").write_text("Subject: deep\nMIME-Version: 1.0\n" + body)
    reason, _ = refused(tmp_path / "deep.eml")
    assert reason.startswith("could not parse .eml file")


def test_a_csv_with_a_huge_field_is_skipped_with_a_reason(tmp_path: Path) -> None:
    (tmp_path / "field.csv").write_text('a,b\n"' + "x" * 300_000 + '",y\n')
    reason, _ = refused(tmp_path / "field.csv")
    assert reason.startswith("malformed CSV: field larger than field limit")
