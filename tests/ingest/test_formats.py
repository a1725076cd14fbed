"""The format registry: a format added the documented way is ingested; the built-in list is consistent."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from ingest.errors import SkipFile
from ingest.parsers import FORMATS, FormatRegistry, FormatSpec, parse_file, sniff
from ingest.pipeline import IngestService
from ingest.scanner import scan_folder
from ingest.settings import IngestSettings
from tests.ingest.recipe_format import is_recipe, parse_recipe

RECIPE = FormatSpec("recipe", "a recipe", (".recipe",), is_recipe, parse_recipe)
WITH_RECIPES = FORMATS.with_formats(RECIPE)
SOUP = "RECIPE\nLentil soup\nSimmer red lentils with cumin and carrots for twenty minutes, then blend.\n"


@pytest.fixture
def settings() -> IngestSettings:
    return IngestSettings()  # type: ignore[call-arg]


def test_a_registered_format_is_listed_sniffed_and_parsed(tmp_path: Path, settings: IngestSettings) -> None:
    (tmp_path / "soup.recipe").write_text(SOUP, encoding="utf-8")
    (tmp_path / "fake.recipe").write_bytes(b"%PDF-1.7\n" + bytes(200))

    doc = parse_file(tmp_path / "soup.recipe", settings, WITH_RECIPES)
    assert doc.title == "Lentil soup"
    assert "red lentils" in doc.pages[0].text
    with pytest.raises(SkipFile, match=r"^content is a PDF document, not a recipe$"):
        parse_file(tmp_path / "fake.recipe", settings, WITH_RECIPES)
    # Without the spec the built-in formats refuse it as before.
    with pytest.raises(SkipFile, match=r"^unsupported file type \.recipe$"):
        parse_file(tmp_path / "soup.recipe", settings)
    assert [f.rel for f in scan_folder(tmp_path, settings, WITH_RECIPES).files] == ["fake.recipe", "soup.recipe"]
    assert scan_folder(tmp_path, settings).failures[0][1] == "unsupported file type .recipe"


@pytest.mark.slow
def test_a_registered_format_is_ingested_and_found(make_services: Any, tmp_path: Path) -> None:
    services = make_services()
    share = tmp_path / "share"
    share.mkdir()
    (share / "soup.recipe").write_text(SOUP, encoding="utf-8")
    (share / "notes.txt").write_text("The canteen opens at noon on weekdays.\n", encoding="utf-8")
    (share / "broken.recipe").write_text("RECIPE\nEmpty\n", encoding="utf-8")

    app = services.ingest  # the app's own ingest service, built again with the recipe format added
    ingest = IngestService(app.settings, app.corpus, app.tokenizer, app.default_collection, app.data_dir, app.jobs,
                           formats=WITH_RECIPES)
    report = ingest.ingest(share)

    assert report.added == 2
    assert report.failed == [("broken.recipe", "recipe has no steps")]
    from assistant.retrieval import Retriever

    found = Retriever(services.corpus, services.settings.retrieval).retrieve("how long to simmer lentils", top_k=1)
    assert [p.chunk.file for p in found.passages] == ["soup.recipe"]


def test_an_office_zip_format_is_told_apart_from_the_other_office_formats(tmp_path: Path) -> None:
    """ODT added with office_zip=True is accepted, and a DOCX named .odt is refused saying what it is."""
    odt = FormatSpec("odt", "an ODT file", (".odt",), sniff.is_zip, parse_recipe, office_zip=True)
    formats = FORMATS.with_formats(odt)
    real = tmp_path / "letter.odt"
    with zipfile.ZipFile(real, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.text")
        zf.writestr("content.xml", "<office:document-content/>")
    assert formats.detect(real) is odt
    docx = tmp_path / "report.odt"
    with zipfile.ZipFile(docx, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        zf.writestr("word/document.xml", "<w:document/>")
    with pytest.raises(SkipFile, match=r"^content is a DOCX document, not an ODT file$"):
        formats.detect(docx)


def test_every_suffix_belongs_to_one_format() -> None:
    with pytest.raises(ValueError, match=r"'\.txt' is claimed by 'text' and 'notes'"):
        FORMATS.with_formats(FormatSpec("notes", "a note", (".txt",), sniff.is_text, parse_recipe))
    with pytest.raises(ValueError, match="not lower case"):
        FormatRegistry([FormatSpec("notes", "a note", (".NOTE",), sniff.is_text, parse_recipe)])
    assert FORMATS.for_suffix(".HTM").name == "html"
    with pytest.raises(SkipFile, match=r"^unsupported file type \.doc \(old Word format: save it as \.docx\)$"):
        FORMATS.for_suffix(".doc")
