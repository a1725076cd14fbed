"""The composition root: builds every service from one Settings object."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.corpus import Corpus
from assistant.embeddings import Embedder, SentenceTransformerEmbedder
from assistant.settings import Settings
from ingest.pipeline import IngestService
from storage.db import Database
from storage.documents import DocumentStore


@dataclass
class Services:
    """Everything the CLI and the web app call."""

    settings: Settings
    db: Database
    corpus: Corpus
    ingest: IngestService

    def close(self) -> None:
        """Release database connections."""
        self.db.dispose()


def build_services(settings: Settings, embedder: Embedder | None = None) -> Services:
    """Create the data dir, migrate the database, and wire the services (models load lazily).

    Args:
        settings: The one settings object.
        embedder: An already loaded embedder to share (tests, several services in one process).
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.db_url)
    db.migrate()

    def make_embedder() -> Embedder:
        return embedder or SentenceTransformerEmbedder(settings.embedding)

    corpus = Corpus(DocumentStore(db), settings.index_dir, settings.embedding.model, make_embedder)
    return Services(settings, db, corpus, IngestService(settings, corpus))
