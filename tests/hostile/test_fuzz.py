"""Property-based tests: parsers fed arbitrary and mutated bytes, and the citation path fed arbitrary output.

A parser either returns pages with text or raises SkipFile with a reason, never anything else
and never hangs. Model output of any shape keeps only markers that point at a retrieved
passage, and its rendering links nowhere but the passages of that answer.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assistant.citations import MARKER_RE, attribute_sentences, clean_markers, markers_in, split_sentences
from assistant.errors import SkipFile
from assistant.settings import IngestSettings
from assistant.stored_answer import ShownMessage
from ingest.document import ParsedDocument
from ingest.parsers import SUPPORTED_SUFFIXES, parse_file
from tests.ingest.test_parsers import make_docx, make_pdf, make_pptx, make_xlsx
from ui.render import answer_html

FORMAT_SEEDS = (".pdf", ".docx", ".pptx", ".xlsx", ".csv", ".html", ".md", ".txt", ".eml", ".png")
# OCR only for images (when tesseract is installed): it is slow, and PDFs' text layers are what is fuzzed there.
PARSE_SETTINGS = IngestSettings(ocr=False)  # type: ignore[call-arg]
IMAGE_SETTINGS = IngestSettings()  # type: ignore[call-arg]
HAS_TESSERACT = shutil.which("tesseract") is not None
FUZZ = settings(max_examples=40, deadline=10_000, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.data_too_large])


def _seed_files(folder: Path) -> dict[str, bytes]:
    """One small valid file per format, as the bytes mutations start from."""
    from tests.ingest.test_parsers import text_image

    make_pdf(folder / "a.pdf", ["Travel policy: economy class.", "Expenses within 30 days."])
    make_docx(folder / "a.docx")
    make_pptx(folder / "a.pptx")
    make_xlsx(folder / "a.xlsx")
    (folder / "a.csv").write_text("Name,City\nAlice,York\nBob,Leeds\n")
    (folder / "a.html").write_text("<html><head><title>T</title></head><body><h1>Leave</h1><p>25 days.</p></body>")
    (folder / "a.md").write_text("# Guide\n\nSome text.\n\n## Part\n\n- item\n")
    (folder / "a.txt").write_text("Plain text about parking permits.\n")
    message = EmailMessage()
    message["Subject"] = "Numbers"
    message.set_content("Hi, the numbers are attached.")
    message.add_attachment("Remember the offsite.\n", filename="notes.txt")
    (folder / "a.eml").write_bytes(message.as_bytes())
    text_image("INVOICE 4711", size=(600, 160)).save(folder / "a.png")
    return {suffix: (folder / f"a{suffix}").read_bytes() for suffix in FORMAT_SEEDS}


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    return _seed_files(tmp_path_factory.mktemp("seeds"))


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed truncated, with bytes overwritten and with random bytes spliced in."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(0, 6))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        if kind == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


def parse_bytes(data: bytes, suffix: str) -> ParsedDocument | SkipFile:
    """Write the bytes under a name with ``suffix`` and parse them; anything but a skip propagates."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        path.write_bytes(data)
        try:
            image = suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".gif")
            return parse_file(path, IMAGE_SETTINGS if image else PARSE_SETTINGS)
        except SkipFile as exc:
            return exc


def check_outcome(outcome: ParsedDocument | SkipFile) -> None:
    if isinstance(outcome, SkipFile):
        assert str(outcome).strip(), "a skip without a reason"
    else:
        assert outcome.pages and any(page.text.strip() for page in outcome.pages)


@pytest.mark.timeout(300)
@FUZZ
@given(suffix=st.sampled_from(sorted(SUPPORTED_SUFFIXES)), data=st.binary(max_size=4096))
def test_arbitrary_bytes_with_any_supported_suffix_parse_or_skip(suffix: str, data: bytes) -> None:
    check_outcome(parse_bytes(data, suffix))


@pytest.mark.timeout(600)
@pytest.mark.parametrize("suffix", FORMAT_SEEDS)
def test_mutated_valid_files_parse_or_skip(seeds: dict[str, bytes], suffix: str) -> None:
    @FUZZ
    @given(data=mutated(seeds[suffix]))
    def run(data: bytes) -> None:
        check_outcome(parse_bytes(data, suffix))

    if suffix != ".png" or HAS_TESSERACT:
        assert isinstance(parse_bytes(seeds[suffix], suffix), ParsedDocument)  # the seed itself is readable
    run()


# --- citations -------------------------------------------------------------------------------

MARKER = st.lists(st.integers(0, 12), min_size=1, max_size=3).map(lambda ns: "[" + ", ".join(map(str, ns)) + "]")
FRAGMENT = st.one_of(
    st.text(max_size=30), MARKER, st.sampled_from([". ", "\n\n", "\n- ", "! ", "[", "]", "[1", "1]", "[[2]]",
                                                  "<script>x</script>", "![t](http://evil.example/a.png)",
                                                  '<img src="http://evil.example/i.png">', "[a](javascript:x)"]),
)
MODEL_OUTPUT = st.lists(FRAGMENT, max_size=12).map("".join)
PASSAGES = ["Economy class applies to flights under six hours.", "Expenses are filed within thirty days.",
            "Parking permits are issued on Mondays.", "Laptops are replaced every three years."]


@settings(max_examples=300, deadline=None)
@given(raw=MODEL_OUTPUT, count=st.integers(0, 8))
def test_cleaned_markers_point_only_at_passages_and_keep_their_order(raw: str, count: int) -> None:
    text, used = clean_markers(raw, count)
    numbers = [int(n) for m in MARKER_RE.finditer(text) for n in re.split(r"\s*[,;]\s*", m.group(1))]
    assert all(1 <= n <= count for n in numbers), (raw, text)
    assert used == list(dict.fromkeys(numbers))
    assert all(re.search(rf"(?<!\d)0*{n}(?!\d)", raw) for n in used)  # nothing is invented


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=MODEL_OUTPUT, count=st.integers(0, len(PASSAGES)))
def test_sentences_and_their_passages_come_from_the_answer_and_the_retrieved_set(
    embedder: Any, raw: str, count: int
) -> None:
    text, _ = clean_markers(raw, count)
    passages = PASSAGES[:count]
    sentences = attribute_sentences(text, passages, embedder.embed_passages, 0.55)
    assert [s.text for s in sentences] == split_sentences(text)
    for sentence in sentences:
        assert sentence.text in text
        assert all(1 <= n <= count for n in sentence.passages), (sentence, count)
        if sentence.status == "cited":
            assert sentence.passages == markers_in(sentence.text)
        assert sentence.status in ("cited", "attributed", "unsupported")


class _Tags(HTMLParser):
    """Every start tag with its attributes, in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags_of(html: str) -> Iterator[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    parser.close()
    yield from parser.tags


MARKDOWN_TAGS = ("p", "em", "strong", "code", "pre", "blockquote", "ul", "ol", "li", "hr", "h1", "h2", "h3", "h4", "h5",
                 "h6", "table", "thead", "tbody", "tr", "th", "td", "s")
"""What Markdown in an answer renders to: structure only, never a link, an image or a script."""


@settings(max_examples=300, deadline=None)
@given(raw=MODEL_OUTPUT, count=st.integers(0, 8), statuses=st.lists(
    st.sampled_from(["cited", "attributed", "unsupported", "bogus"]), max_size=12))
def test_rendered_answers_link_only_to_their_own_passages(raw: str, count: int, statuses: list[str]) -> None:
    text, _ = clean_markers(raw, count)
    sentences = [{"text": s, "status": status, "passages": markers_in(s) or ([1] if count else [])}
                 for s, status in zip(split_sentences(text), statuses, strict=False)]
    message = ShownMessage.model_validate({"id": 7, "question": "q", "answer": text, "sentences": sentences,
                                           "sources": [{"n": n, "chunk_id": n} for n in range(1, count + 1)]})
    html = answer_html(message, "7")
    for tag, attrs in tags_of(html):
        assert tag in ("a", "span", "br", *MARKDOWN_TAGS), (tag, raw)
        assert not any(name.startswith("on") or name in ("src", "style") for name in attrs), (tag, attrs)
        if tag == "a":
            found = re.fullmatch(r"#src-7-(\d+)", attrs.get("href") or "")
            assert found and 1 <= int(found.group(1)) <= count, (attrs, raw)
