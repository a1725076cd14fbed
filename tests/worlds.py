"""Small worlds for service-level tests: a PDF written on the spot, services answered by an Ollama stand-in."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.services import Services, build_services
from assistant.settings import load_settings
from tests.fake_ollama import FakeOllama


def make_pdf(path: Path, pages: list[str]) -> None:
    """A small text PDF, one paragraph per page."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))


def services_answered_by(fake: FakeOllama, root: Path, embedder: Any, collections: Iterable[str]) -> Services:
    """Services over ``root / "data"`` answering through ``fake``, each ``root / name`` ingested as collection name."""
    settings = load_settings(data_dir=root / "data", generation={"backend": "ollama", "ollama": {
        "hosts": [fake.url], "read_timeout_s": 10}})
    services = build_services(settings, embedder=embedder)
    for name in collections:
        services.ingest.ingest(root / name, name)
    return services
