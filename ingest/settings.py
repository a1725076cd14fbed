"""Ingest's section of the settings (``[ingest]`` in enclave.toml); ``assistant.settings.Settings`` composes it."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, Field

MAX_AUTO_PARSERS = 4  # parse_workers = 0: past four, parsing outruns any CPU embedder and only takes memory


class IngestSettings(BaseModel):
    """How folders are read and cut into chunks; immutable once built, like every settings section."""

    model_config = ConfigDict(frozen=True)

    max_file_mb: float = Field(200.0, description="Files larger than this are skipped with a reason.")
    parse_timeout_s: float = Field(120.0, description="A file whose parser runs longer is skipped.")
    max_unzipped_mb: float = Field(
        500.0, description="Office files (zip containers) that expand beyond this are refused as zip bombs."
    )
    chunk_tokens: int = Field(200, description="Target chunk size in embedding-model tokens.")
    chunk_overlap: int = Field(30, description="Tokens shared by neighbouring chunks.")
    ocr: bool = Field(True, description="Run tesseract on scanned pages and images when it is installed.")
    ocr_languages: str = Field("eng", description="Tesseract language codes, joined by '+'.")
    save_every_s: float = Field(20.0, description="Seconds between index checkpoints during a long ingest.")
    parse_workers: int = Field(
        0, ge=0, description="Parser processes working ahead of the embedder; 0 means one per CPU core, at most "
        f"{MAX_AUTO_PARSERS}. They run niced, so questions keep the cores first.")
    embed_group_chunks: int = Field(
        256, ge=1, description="Chunks written (keyword-searchable at once) and then embedded together in one "
        "step; smaller groups make the first files searchable sooner, larger ones commit less often.")
    worker_memory_mb: int = Field(3072, description="Address-space cap of each parser process; 0 for none.")

    def parsers(self) -> int:
        """Parser processes to run: ``parse_workers``, or one per core up to ``MAX_AUTO_PARSERS`` when it is 0."""
        return self.parse_workers or max(1, min(MAX_AUTO_PARSERS, os.cpu_count() or 1))
