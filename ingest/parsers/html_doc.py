"""HTML pages: the main text as Markdown (headings kept), never fetching anything they link to."""

from __future__ import annotations

import html as html_lib
import re
from pathlib import Path

from ingest.document import ParsedDocument
from ingest.errors import SkipFile
from ingest.parsers.encoding import decode_text
from ingest.parsers.markdown_doc import markdown_page
from ingest.settings import IngestSettings

_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]+charset\s*=\s*["']?\s*([\w.:-]+)|<\?xml[^>]+encoding\s*=\s*["']([\w.:-]+)""", re.IGNORECASE
)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)
_BOLD = re.compile(r"\*\*(?=\S)([^*]+?)(?<=\S)\*\*")
_ITALIC = re.compile(r"(?<![\w*])\*(?=[^\s*])([^*\n]+?)(?<=\S)\*(?![\w*])")
_HEADING_LINE = re.compile(r"(?m)^#{1,6} \S")
_TABLE_ROW = re.compile(r"(?m)^.*\S \| \S.*$")
_MIN_MAIN_SHARE = 0.5  # below this share of the visible text, the "main text" has lost content
_LIST_ITEM = re.compile(r"(?:[-*+]|\d+[.)])\s")
_INLINE_TAGS = re.compile(r"</?(?:u|s|sub|sup|del|ins|mark|small|big|kbd|span)>", re.IGNORECASE)
_INNER_SPACES = re.compile(r"(?<=\S)[ \t]{2,}")
_TRAILING_SPACES = re.compile(r"(?m)[ \t]+$")
_BLANK_RUNS = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
_DROPPED_TAGS = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
# Browsers stop nesting at a few hundred levels (Chromium at 512); a page nested far deeper is a
# parser bomb: BeautifulSoup's tree building is quadratic in depth (10,000 levels take minutes).
MAX_NESTING = 1000
_TAG_RE = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9-]*)[^>]*?(/?)>")
# Void elements and elements whose end tag may be left out do not nest in a way that counts here.
_FLAT_TAGS = frozenset({
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr",
    "p", "li", "dt", "dd", "tr", "td", "th", "option", "optgroup", "thead", "tbody", "tfoot", "colgroup", "rt",
    "rp", "caption", "html", "head", "body",
})
_BLOCK_TAGS = (
    "p", "div", "li", "tr", "table", "section", "article", "header", "footer", "nav", "aside",
    "blockquote", "pre", "ul", "ol", "dl", "dt", "dd", "form", "figure", "figcaption", "main", "address",
)


def parse_html(path: Path, settings: IngestSettings) -> ParsedDocument:
    """One page of main text with sections at the page's headings."""
    page_html = decode_html(path.read_bytes())
    page = markdown_page(html_to_markdown(page_html))
    return ParsedDocument([page], title=html_title(page_html))


def decode_html(data: bytes) -> str:
    """Decode by BOM, then the ``<meta charset>`` or XML declaration, then detection."""
    match = _DECLARED_CHARSET.search(data[:4096])
    declared = (match.group(1) or match.group(2)).decode("ascii") if match else None
    return decode_text(data, declared=declared)


def html_title(page_html: str) -> str | None:
    """The text of ``<title>``, if any."""
    match = _TITLE.search(page_html[:200_000])
    title = " ".join(html_lib.unescape(match.group(1)).split()) if match else ""
    return title or None


def html_to_markdown(page_html: str) -> str:
    """Main text as Markdown via trafilatura, or the whole visible text when that loses content.

    On short pages trafilatura sometimes drops every heading or a whole table; then the
    full text, boilerplate and all, is the safer thing to index.
    """
    import trafilatura

    check_nesting(page_html)  # before trafilatura, which also slows down on deep trees
    extracted = trafilatura.extract(
        page_html,
        output_format="markdown",
        include_tables=True,
        include_formatting=True,  # needed for '#' headings; bold and italic marks are removed below
        include_links=False,
        include_images=False,
        include_comments=False,
        favor_recall=True,
        with_metadata=False,
    )
    main = _tidy_markdown(extracted or "")
    full = soup_text(page_html)
    return main if _keeps_structure(main, full) else full


def _keeps_structure(main: str, full: str) -> bool:
    """Whether the extracted main text kept enough of the page: its share, headings, tables."""
    if len(main) < _MIN_MAIN_SHARE * len(full):
        return False
    return all(pattern.search(main) or not pattern.search(full) for pattern in (_HEADING_LINE, _TABLE_ROW))


def _tidy_markdown(text: str) -> str:
    """Drop emphasis marks and leftover inline tags, and the source's layout whitespace."""
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = _INLINE_TAGS.sub("", text)
    text = _INNER_SPACES.sub(" ", _TRAILING_SPACES.sub("", text))
    return _dedent(text).strip()


def _dedent(text: str) -> str:
    """Remove the source's indentation except for nested list items and fenced ``<pre>`` text."""
    lines: list[str] = []
    fenced = False
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith("```"):
            fenced = not fenced
        keep = fenced or (_LIST_ITEM.match(stripped) is not None)
        lines.append(line if keep else stripped)
    return "\n".join(lines)


def check_nesting(page_html: str, limit: int = MAX_NESTING) -> None:
    """Raise SkipFile when elements nest deeper than ``limit`` (counted in one linear scan of the tags)."""
    depth = 0
    for match in _TAG_RE.finditer(page_html):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if name in _FLAT_TAGS or self_closing:
            continue
        depth = max(depth - 1, 0) if closing else depth + 1
        if depth > limit:
            raise SkipFile(f"HTML nested over {limit} elements deep: refused as a likely parser bomb")


def soup_text(page_html: str) -> str:
    """All visible text, one block a line, headings as Markdown ``#`` lines."""
    from bs4 import BeautifulSoup

    check_nesting(page_html)
    soup = BeautifulSoup(page_html, "lxml")
    for tag in soup(_DROPPED_TAGS):
        tag.decompose()
    for level in range(1, 7):
        for heading in soup.find_all(f"h{level}"):
            title = " ".join(heading.get_text(" ").split())
            heading.replace_with(f"\n\n{'#' * level} {title}\n\n" if title else "\n")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for cell in soup.find_all(("td", "th")):
        cell.append(" | ")
    for block in soup.find_all(_BLOCK_TAGS):
        block.append("\n")
    lines = (" ".join(line.split()) for line in soup.get_text().split("\n"))
    text = "\n".join(line.removesuffix(" |") for line in lines)
    return _BLANK_RUNS.sub("\n\n", text).strip()
