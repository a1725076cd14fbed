"""The composition root: builds every service from one Settings object."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from assistant.answer import AnswerService
from assistant.corpus import POSTGRESQL, Corpus
from assistant.data_dir import make_data_dir
from assistant.embeddings import Embedder, build_embedder, tokenizer_source
from assistant.live_settings import LiveSettings
from assistant.llm.factory import AnsweringModel
from assistant.retrieval import CrossEncoderReranker, Reranker, Retriever
from assistant.settings import Settings
from assistant.web_services import WebServices, build_web_services
from ingest.pipeline import IngestService
from storage.db import Database
from storage.documents import DocumentStore
from storage.file_claims import FileClaims
from storage.job_store import JobStore
from storage.vector_index import VectorLayout


@dataclass
class Services:
    """Everything the CLI and the web app call."""

    settings: Settings
    db: Database
    corpus: Corpus
    ingest: IngestService[Corpus]
    retriever: Retriever
    answers: AnswerService
    web: WebServices

    def close(self) -> None:
        """Release the answering model and the database connections."""
        self.answers.models.close()
        self.db.dispose()


def build_services(
    settings: Settings, embedder: Embedder | None = None, index_writer: bool = True,
) -> Services:
    """Create the data dir, migrate the database, and wire the services (models load lazily).

    Args:
        settings: The one settings object.
        embedder: An already loaded embedder to share (tests, several services in one process).
        index_writer: False for app processes beside a `run.py worker`: they load the index
            versions the worker saves and never write one.
    """
    make_data_dir(settings.data_dir)
    db = Database(settings.db_url)
    db.migrate()

    def make_embedder() -> Embedder:
        return embedder or build_embedder(settings.embedding)

    retrieval = settings.retrieval
    layout = VectorLayout(approximate_above=retrieval.approximate_above, nprobe=retrieval.nprobe,
                          ef_search=retrieval.ef_search)
    corpus = Corpus(DocumentStore(db), settings.index_dir, settings.embedding.model, make_embedder, layout,
                    read_only=not index_writer, index_check_s=settings.jobs.index_check_s,
                    backend=retrieval.index_backend)
    reranker: Reranker | None = (
        CrossEncoderReranker(settings.retrieval.reranker_model) if settings.retrieval.reranker_model else None
    )
    retriever = Retriever(corpus, settings.retrieval, reranker)
    live = LiveSettings(settings, corpus.store)
    answers = AnswerService(live, corpus, retriever, AnsweringModel(settings.data_dir / "models"))
    # On the PostgreSQL backend every worker may take files of any queued job (SKIP LOCKED claims with leases).
    claims = FileClaims(db, settings.jobs.lease_s) if retrieval.index_backend == POSTGRESQL else None
    ingest = IngestService(settings.ingest, corpus, partial(tokenizer_source, settings.embedding.model),
                           settings.default_collection, settings.data_dir, JobStore(db), claims=claims)
    web = build_web_services(settings, db, corpus, ingest, answers)
    return Services(settings, db, corpus, ingest, retriever, answers, web)
