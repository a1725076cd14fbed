"""The parsers on files made here and on the shared fixture folder: what a user would notice."""

from __future__ import annotations

import shutil
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import SkipFile
from assistant.settings import IngestSettings
from ingest.document import Page, ParsedDocument
from ingest.parsers import SUPPORTED_SUFFIXES, parse_file

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "ingest-fixtures"
needs_tesseract = pytest.mark.skipif(shutil.which("tesseract") is None, reason="tesseract-ocr is not installed")


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings()  # type: ignore[call-arg]


@pytest.fixture
def no_tesseract(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH on which no tesseract can be found, as on a machine without tesseract-ocr."""
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))


def heading_of(page: Page, needle: str) -> str:
    """The heading path of the section holding ``needle``."""
    at = page.text.index(needle)
    return next(s.heading for s in page.iter_sections() if s.start <= at < s.end)


def skip_reason(path: Path, settings: IngestSettings) -> str:
    with pytest.raises(SkipFile) as caught:
        parse_file(path, settings)
    return str(caught.value)


def text_image(text: str, size: tuple[int, int] = (900, 220)) -> Any:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", size, "white")
    ImageDraw.Draw(image).text((30, 60), text, fill="black", font=ImageFont.load_default(size=64))
    return image


def make_pdf(path: Path, pages: list[str], title: str | None = None, image: Any = None) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(title or "")
    for text in pages:
        pdf.add_page()
        pdf.set_font("Helvetica", size=14)
        if text:
            pdf.multi_cell(0, 10, text)
        if image is not None:
            pdf.image(image, x=10, y=40, w=180)
    pdf.output(str(path))
    return path


def encrypt_pdf(src: Path, dst: Path, user_password: str) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(src))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with dst.open("wb") as fh:
        writer.write(fh)
    return dst


# --- PDF -------------------------------------------------------------------------------


def test_pdf_text_keeps_its_page_numbers(tmp_path: Path, settings: IngestSettings) -> None:
    path = make_pdf(tmp_path / "POLICY.PDF", ["Alpha travel rules", "", "Gamma expense limits"], title="Policy")
    doc = parse_file(path, settings)
    assert [(p.number, p.text.strip()) for p in doc.pages] == [(1, "Alpha travel rules"), (3, "Gamma expense limits")]
    assert doc.title == "Policy"
    assert not doc.ocr_used


def test_pdf_with_empty_user_password_is_read_and_with_a_password_is_skipped(
    tmp_path: Path, settings: IngestSettings
) -> None:
    plain = make_pdf(tmp_path / "plain.pdf", ["Confidential salary bands"])
    opened = parse_file(encrypt_pdf(plain, tmp_path / "owner-only.pdf", ""), settings)
    assert "Confidential salary bands" in opened.pages[0].text
    reason = skip_reason(encrypt_pdf(plain, tmp_path / "locked.pdf", "secret"), settings)
    assert reason == "password-protected PDF"


def test_corrupt_and_truncated_pdfs_are_skipped_with_a_reason(tmp_path: Path, settings: IngestSettings) -> None:
    good = make_pdf(tmp_path / "good.pdf", ["Some text " * 50])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 20)
    for path in (truncated, garbage):
        assert "corrupt or truncated PDF" in skip_reason(path, settings)


def test_scanned_pdf_without_ocr_says_why(tmp_path: Path, settings: IngestSettings, no_tesseract: None) -> None:
    path = make_pdf(tmp_path / "scan.pdf", [""], image=text_image("INVOICE 4711"))
    reason = skip_reason(path, settings)
    assert reason.startswith("scanned PDF with no text layer") and "install tesseract-ocr" in reason
    reason = skip_reason(path, IngestSettings(ocr=False))  # type: ignore[call-arg]
    assert reason == "scanned PDF with no text layer: OCR is turned off (ingest.ocr)"


@needs_tesseract
def test_scanned_pdf_pages_are_read_by_ocr(tmp_path: Path, settings: IngestSettings) -> None:
    path = make_pdf(tmp_path / "scan.pdf", ["", ""], image=text_image("INVOICE 4711"))
    doc = parse_file(path, settings)
    assert doc.ocr_used
    assert [p.number for p in doc.pages] == [1, 2]
    assert "INVOICE" in doc.pages[1].text.upper()


# --- images ----------------------------------------------------------------------------


@needs_tesseract
def test_images_are_read_by_ocr_and_tiff_pages_are_numbered(tmp_path: Path, settings: IngestSettings) -> None:
    text_image("INVOICE 4711").save(tmp_path / "scan.png")
    doc = parse_file(tmp_path / "scan.png", settings)
    assert doc.ocr_used and "INVOICE" in doc.pages[0].text.upper()
    first, second = text_image("FIRST PAGE"), text_image("SECOND PAGE")
    first.save(tmp_path / "fax.tiff", save_all=True, append_images=[second])
    tiff = parse_file(tmp_path / "fax.tiff", settings)
    assert [p.number for p in tiff.pages] == [1, 2]
    assert "SECOND" in tiff.pages[1].text.upper()


def test_image_without_tesseract_or_with_ocr_off_is_skipped_with_the_reason(
    tmp_path: Path, settings: IngestSettings, no_tesseract: None
) -> None:
    text_image("INVOICE 4711").save(tmp_path / "scan.jpg")
    assert "tesseract is not installed" in skip_reason(tmp_path / "scan.jpg", settings)
    off = IngestSettings(ocr=False)  # type: ignore[call-arg]
    assert "OCR is turned off" in skip_reason(tmp_path / "scan.jpg", off)


# --- misleading extensions, unsupported and empty files ---------------------------------

PNG_BYTES = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000") + bytes(40)


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("report.pdf", lambda: Path(sys.executable).resolve().read_bytes()[:65536], "an ELF executable, not a PDF"),
        ("notes.docx", lambda: PNG_BYTES, "content is a PNG image, not a DOCX file"),
        ("data.txt", lambda: PNG_BYTES, "content is a PNG image, not a text file"),
        ("photo.jpg", lambda: b"%PDF-1.4\n" + bytes(300), "content is a PDF document, not an image"),
        ("notes.txt", lambda: bytes(range(256)) * 40, "content is binary, not text"),
    ],
)
def test_misleading_extensions_are_named(
    tmp_path: Path, settings: IngestSettings, name: str, content: Callable[[], bytes], expected: str
) -> None:
    (tmp_path / name).write_bytes(content())
    assert expected in skip_reason(tmp_path / name, settings)


def test_unsupported_and_empty_files_are_skipped(tmp_path: Path, settings: IngestSettings) -> None:
    (tmp_path / "old.doc").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600))
    assert skip_reason(tmp_path / "old.doc", settings).startswith("unsupported file type .doc")
    (tmp_path / "blank.txt").write_text(" \n\t\n")
    assert skip_reason(tmp_path / "blank.txt", settings) == "no text found"
    assert skip_reason(make_pdf(tmp_path / "blank.pdf", [""]), settings) == "no text found"


def test_supported_suffixes_are_lower_case_and_cover_the_formats() -> None:
    assert all(s.startswith(".") and s == s.lower() for s in SUPPORTED_SUFFIXES)
    expected = ".pdf .docx .pptx .xlsx .csv .tsv .html .htm .md .markdown .txt .eml .png .jpg .jpeg .tiff .gif"
    assert set(expected.split()) <= SUPPORTED_SUFFIXES
    assert not {".doc", ".xls", ".ppt", ".msg"} & SUPPORTED_SUFFIXES


# --- Office files and zip bombs ------------------------------------------------------------


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Staff handbook", level=0)
    document.add_paragraph("Welcome to the company.")
    document.add_heading("Benefits", level=1)
    document.add_paragraph("We offer several benefits.")
    document.add_heading("Dental", level=2)
    document.add_paragraph("Cleanings are covered twice a year.")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, [("Plan", "Deductible"), ("Basic", "$50")], strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    document.add_heading("Leave", level=1)
    document.add_paragraph("Annual leave is 25 days.")
    document.save(str(path))
    return path


def make_pptx(path: Path) -> Path:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    first = deck.slides.add_slide(deck.slide_layouts[0])
    first.shapes.title.text = "Kick-off"
    first.placeholders[1].text = "Project Falcon"
    second = deck.slides.add_slide(deck.slide_layouts[5])
    second.shapes.title.text = "Quarterly results"
    second.shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1)).text_frame.text = "Revenue grew 12%"
    table = second.shapes.add_table(2, 2, Inches(1), Inches(3), Inches(4), Inches(1)).table
    for (r, c), value in zip([(0, 0), (0, 1), (1, 0), (1, 1)], ["Region", "Sales", "North", "100"], strict=True):
        table.cell(r, c).text = value
    second.notes_slide.notes_text_frame.text = "Mention the new office"
    third = deck.slides.add_slide(deck.slide_layouts[6])
    third.shapes.add_textbox(Inches(1), Inches(1), Inches(4), Inches(1)).text_frame.text = "Questions welcome"
    deck.save(str(path))
    return path


def make_xlsx(path: Path) -> Path:
    import datetime as dt

    from openpyxl import Workbook

    workbook = Workbook()
    staff = workbook.active
    staff.title = "Staff"
    for row in [("Name", "Dept", "Start"), ("Alice", "HR", dt.datetime(2021, 3, 1)), ("Bob", "IT", None)]:
        staff.append(row)
    budget = workbook.create_sheet("Budget")
    budget.append(("Item", "Amount"))
    budget.append(("Laptops", 1200.0))
    workbook.save(path)
    return path


def test_docx_keeps_body_order_and_heading_paths(tmp_path: Path, settings: IngestSettings) -> None:
    doc = parse_file(make_docx(tmp_path / "handbook.docx"), settings)
    page = doc.pages[0]
    assert page.number is None
    assert heading_of(page, "Cleanings are covered") == "Staff handbook > Benefits > Dental"
    assert heading_of(page, "Basic | $50") == "Staff handbook > Benefits > Dental"
    assert heading_of(page, "Annual leave") == "Staff handbook > Leave"
    assert page.text.index("Cleanings") < page.text.index("Basic | $50") < page.text.index("Annual leave")
    assert doc.title == "Staff handbook"


def test_pptx_pages_are_slides_titled_by_the_slide_title(tmp_path: Path, settings: IngestSettings) -> None:
    doc = parse_file(make_pptx(tmp_path / "deck.pptx"), settings)
    assert [p.number for p in doc.pages] == [1, 2, 3]
    results = doc.pages[1]
    assert heading_of(results, "Revenue grew 12%") == "Quarterly results"
    assert "Region | Sales" in results.text and "North | 100" in results.text
    assert "Notes: Mention the new office" in results.text
    assert heading_of(doc.pages[2], "Questions welcome") == "Slide 3"


def test_xlsx_rows_carry_sheet_and_column_names(tmp_path: Path, settings: IngestSettings) -> None:
    page = parse_file(make_xlsx(tmp_path / "book.xlsx"), settings).pages[0]
    assert "Row 2: Name: Alice; Dept: HR; Start: 2021-03-01" in page.text
    assert "Row 3: Name: Bob; Dept: IT" in page.text
    assert [s.heading for s in page.sections] == ["Staff", "Budget"]
    budget = page.text[page.sections[1].start : page.sections[1].end]
    assert "Row 2: Item: Laptops; Amount: 1200" in budget and "Alice" not in budget


def add_zero_member(path: Path, megabytes: int) -> None:
    """Append a member of zeros: a few KB on disk that expand to ``megabytes`` MB."""
    with (
        zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/padding.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(megabytes):
            member.write(bytes(1 << 20))


@pytest.mark.parametrize("make", [make_docx, make_pptx, make_xlsx])
def test_zip_bombs_are_refused_before_the_library_opens_them(
    tmp_path: Path, settings: IngestSettings, make: Callable[[Path], Path]
) -> None:
    path = make(tmp_path / f"bomb.{make.__name__.removeprefix('make_')}")
    add_zero_member(path, 40)
    assert path.stat().st_size < 1024 * 1024
    reason = skip_reason(path, settings)
    assert reason.startswith("zip bomb: expands to 4") and "padding.bin is compressed" in reason
    small_limit = IngestSettings(max_unzipped_mb=10)  # type: ignore[call-arg]
    assert "over the 10 MB limit" in skip_reason(path, small_limit)


def test_corrupt_office_files_are_skipped(tmp_path: Path, settings: IngestSettings) -> None:
    good = make_docx(tmp_path / "good.docx")
    (tmp_path / "cut.docx").write_bytes(good.read_bytes()[:4000])
    assert skip_reason(tmp_path / "cut.docx", settings).startswith("corrupt or truncated DOCX file")
    with zipfile.ZipFile(tmp_path / "other.xlsx", "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    assert skip_reason(tmp_path / "other.xlsx", settings).startswith("not a readable XLSX file")
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600) + "EncryptionInfo".encode("utf-16-le") + bytes(600)
    (tmp_path / "locked.xlsx").write_bytes(ole)
    assert skip_reason(tmp_path / "locked.xlsx", settings) == "password-protected XLSX file"


# --- text formats ----------------------------------------------------------------------------

SAMPLES = {
    "western": "Grüße aus Köln! Das Café am Dom verkauft Kuchen für 5 € – „lecker“, sagt Jürgen.\n" * 3,
    "japanese": "日本語のテキストファイルです。東京の天気は晴れです。会議は明日の午後三時から始まります。\n" * 3,
}


@pytest.mark.parametrize(
    ("encoding", "sample"),
    [("utf-8", "western"), ("utf-8-sig", "western"), ("utf-16", "western"), ("utf-16", "japanese"),
     ("cp1252", "western"), ("shift_jis", "japanese")],
)
def test_text_files_in_common_encodings_are_decoded(
    tmp_path: Path, settings: IngestSettings, encoding: str, sample: str
) -> None:
    path = tmp_path / "note.txt"
    path.write_bytes(SAMPLES[sample].replace("\n", "\r\n").encode(encoding))
    assert parse_file(path, settings).pages[0].text == SAMPLES[sample]


def test_csv_and_tsv_rows_keep_header_context(tmp_path: Path, settings: IngestSettings) -> None:
    rows = "Name;City;Salary\nMüller;Köln;3000,50 €\nDupont;Nîmes;2800\nSmith;York;2500\n"
    (tmp_path / "staff.csv").write_bytes(rows.encode("cp1252"))
    page = parse_file(tmp_path / "staff.csv", settings).pages[0]
    assert "Row 2: Name: Müller; City: Köln; Salary: 3000,50 €" in page.text
    (tmp_path / "cups.tsv").write_bytes("Team\tCups\nBlues\t1\n".encode("utf-16"))
    assert "Row 2: Team: Blues; Cups: 1" in parse_file(tmp_path / "cups.tsv", settings).pages[0].text


def test_markdown_sections_follow_headings_but_not_code(tmp_path: Path, settings: IngestSettings) -> None:
    text = "Intro line\n\n# Guide\n\nSome text.\n\n```\n# not a heading\n```\n\n"
    text += "Setup\n-----\n\nInstall it.\n\n### Details\n\nMore.\n"
    (tmp_path / "guide.md").write_text(text, encoding="utf-8")
    doc = parse_file(tmp_path / "guide.md", settings)
    page = doc.pages[0]
    assert page.text == text
    assert [s.heading for s in page.sections] == ["", "Guide", "Guide > Setup", "Guide > Setup > Details"]
    assert heading_of(page, "# not a heading") == "Guide"
    assert heading_of(page, "Install it.") == "Guide > Setup"
    assert doc.title == "Guide"


def test_html_main_text_keeps_headings_and_drops_scripts(tmp_path: Path, settings: IngestSettings) -> None:
    html = """<html><head><title>Staff portal</title><script>var token = "do not index";</script>
    <link rel="stylesheet" href="http://203.0.113.5/style.css"></head><body>
    <h1>Handbook</h1><p>Welcome to the handbook of the company, which explains our policies in detail.</p>
    <h2>Leave policy</h2><p>Employees get twenty-five days of annual leave each year, plus public holidays.</p>
    <table><tr><th>Type</th><th>Days</th></tr><tr><td>Annual</td><td>25</td></tr></table>
    <img src="http://203.0.113.5/logo.png"></body></html>"""
    (tmp_path / "portal.html").write_text(html, encoding="utf-8")
    doc = parse_file(tmp_path / "portal.html", settings)  # the session's network guard fails any fetch
    page = doc.pages[0]
    assert doc.title == "Staff portal"
    assert "do not index" not in page.text
    assert heading_of(page, "twenty-five days") == "Handbook > Leave policy"
    assert "Annual" in page.text and "25" in page.text
    (tmp_path / "tiny.htm").write_bytes("<h2>Öffnungszeiten</h2>".encode("cp1252"))
    assert parse_file(tmp_path / "tiny.htm", settings).pages[0].sections[0].heading == "Öffnungszeiten"


def test_email_has_header_summary_body_and_text_attachments(tmp_path: Path, settings: IngestSettings) -> None:
    message = EmailMessage()
    message["From"] = "Alice <alice@example.com>"
    message["To"] = "Bob <bob@example.com>"
    message["Subject"] = "Quarterly numbers"
    message["Date"] = formatdate(1_700_000_000)
    message.set_content("Hi Bob,\nthe numbers are attached.\n")
    message.add_alternative("<p>The HTML copy of the body</p>", subtype="html")
    message.add_attachment("Remember the offsite.\n", filename="notes.txt")
    message.add_attachment(b"Region,Sales\nNorth,100\n", maintype="application", subtype="octet-stream",
                           filename="sales.csv")
    message.add_attachment(PNG_BYTES, maintype="image", subtype="png", filename="logo.png")
    (tmp_path / "mail.eml").write_bytes(message.as_bytes())
    doc = parse_file(tmp_path / "mail.eml", settings)
    summary = doc.pages[0].text
    assert "From: Alice <alice@example.com>" in summary and "Subject: Quarterly numbers" in summary
    assert "the numbers are attached" in summary and "HTML copy" not in summary
    assert "Attachments not read: logo.png" in summary
    assert doc.title == "Quarterly numbers"
    assert heading_of(doc.pages[1], "Remember the offsite.") == "Attachment: notes.txt"
    assert heading_of(doc.pages[2], "Row 2: Region: North; Sales: 100") == "Attachment: sales.csv"
    html_only = EmailMessage()
    html_only.set_content("<p>Body with <b>bold</b> words</p>", subtype="html")
    (tmp_path / "news.eml").write_bytes(html_only.as_bytes())
    text = parse_file(tmp_path / "news.eml", settings).pages[0].text
    assert "Body with bold words" in text and "<p>" not in text


# --- in a child process, and over the shared fixtures ---------------------------------------


def parse_in_children(paths: list[Path], settings: IngestSettings, timeout_s: float) -> dict[Path, object]:
    """Parse each file in a worker process as the pipeline does: a document, a reason, or a failure."""
    from concurrent.futures import TimeoutError as FutureTimeout

    from pebble import ProcessPool

    outcomes: dict[Path, object] = {}
    with ProcessPool(max_workers=2) as pool:
        futures = {path: pool.schedule(parse_file, args=(path, settings), timeout=timeout_s) for path in paths}
        for path, future in futures.items():
            try:
                outcomes[path] = future.result()
            except SkipFile as exc:
                outcomes[path] = exc
            except FutureTimeout:
                outcomes[path] = f"hung: no result within {timeout_s:g} s"
    return outcomes


def test_parse_file_runs_in_a_child_process(tmp_path: Path, settings: IngestSettings) -> None:
    docx_path = make_docx(tmp_path / "handbook.docx")
    (tmp_path / "old.doc").write_bytes(b"not really a doc")
    outcomes = parse_in_children([docx_path, tmp_path / "old.doc"], settings, timeout_s=60)
    parsed = outcomes[docx_path]
    assert isinstance(parsed, ParsedDocument) and "Annual leave" in parsed.pages[0].text
    assert str(outcomes[tmp_path / "old.doc"]) == "unsupported file type .doc (old Word format: save it as .docx)"


def expected_fixture_outcomes() -> dict[str, tuple[str, str]]:
    """Fixture path -> ("text" | "heading" | "skip", words the text, a heading path or the reason holds)."""
    locked = [f"pypdf/resources/encryption/r{r}-user-password.pdf" for r in (2, 3, 5, 6)]
    locked += ["pypdf/resources/libreoffice-writer-password.pdf", "unstructured/example-docs/pdf/password.pdf"]
    readable = [f"pypdf/resources/encryption/r{r}-empty-password.pdf" for r in (2, 3, 5, 6)]
    readable.append("pypdf/resources/encryption/r4-owner-password.pdf")
    docs = "unstructured/example-docs/"
    ocr = ("text", "CREATURES") if shutil.which("tesseract") else ("skip", "tesseract is not installed")
    return {
        **dict.fromkeys(readable, ("text", "pdf encryption test")),
        **dict.fromkeys(locked, ("skip", "password-protected PDF")),
        docs + "password_protected.xlsx": ("skip", "password-protected XLSX file"),
        docs + "handbook-872p.docx": ("heading", "CHAPTER 1 – INTRODUCTION > A. PURPOSE"),
        docs + "category-level.docx": ("heading", "A Heading 1 > A Heading 2"),
        docs + "stanley-cups.xlsx": ("text", "Row 3: Team: Blues; Location: STL; Stanley Cups: 1"),
        docs + "stanley-cups-utf-16.csv": ("text", "Row 4: Team: Flyers; Location: PHI; Stanley Cups: 2"),
        docs + "fake-text-utf-16-be.txt": ("text", "This is a test document to use for unit tests."),
        docs + "fake-html-cp1252.html": ("text", "L'été était très chaud"),
        docs + "umlauts-non-utf8.md": ("heading", "können"),
        docs + "fake-power-point.pptx": ("heading", "Adding a Bullet Slide"),
        docs + "eml/fake-email-attachment.eml": ("heading", "Attachment: fake-attachment.txt"),
        docs + "eml/fake-encrypted.eml": ("skip", "encrypted email"),
        docs + "fake.doc": ("skip", "unsupported file type .doc"),
        docs + "empty.txt": ("skip", "no text found"),
        docs + "img/DA-1p.png": ocr,
    }


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_every_fixture_parses_or_is_skipped_with_a_reason(
    settings: IngestSettings, capsys: pytest.CaptureFixture[str]
) -> None:
    if not FIXTURES.is_dir():
        pytest.skip(f"{FIXTURES} is absent (the shared fixtures live beside the project, not in a user's clone)")
    paths = sorted(p for p in FIXTURES.rglob("*") if p.is_file())
    started = time.monotonic()
    outcomes = parse_in_children(paths, settings, timeout_s=120)
    wall = time.monotonic() - started  # two workers, as the pipeline's parse_workers may run them
    failures = [f"{p.relative_to(FIXTURES)}: {o}" for p, o in outcomes.items() if isinstance(o, str)]
    empty = [p for p, o in outcomes.items() if isinstance(o, ParsedDocument) and not o.char_count]
    blank_reasons = [p for p, o in outcomes.items() if isinstance(o, SkipFile) and not str(o).strip()]
    assert not failures and not empty and not blank_reasons, (failures, empty, blank_reasons)
    for rel, (kind, words) in expected_fixture_outcomes().items():
        outcome = outcomes[FIXTURES / rel]
        if kind == "skip":
            assert isinstance(outcome, SkipFile) and words in str(outcome), (rel, outcome)
            continue
        assert isinstance(outcome, ParsedDocument), (rel, outcome)
        found = [s.heading for p in outcome.pages for s in p.sections] if kind == "heading" else outcome.pages
        assert any(words in (f if isinstance(f, str) else f.text) for f in found), (rel, kind, words)
    deck = outcomes[FIXTURES / "unstructured/example-docs/pdf/DA-619p.pdf"]
    assert isinstance(deck, ParsedDocument) and max(p.number or 0 for p in deck.pages) == 619
    reasons = Counter(str(o) for o in outcomes.values() if isinstance(o, SkipFile))
    parsed = sum(isinstance(o, ParsedDocument) for o in outcomes.values())
    lines = [f"{count:4d}  {reason}" for reason, count in reasons.most_common()]
    report = f"\nfixtures: {parsed} parsed, {reasons.total()} skipped, {wall:.1f} s wall\n" + "\n".join(lines)
    with capsys.disabled():
        print(report)
