"""The services behind the web app and ``run.py users``: accounts, access, chats, documents, jobs."""

from __future__ import annotations

from dataclasses import dataclass

from assistant.access import AccessService
from assistant.accounts import AccountService
from assistant.answer import AnswerService
from assistant.api_tokens import ApiTokenService
from assistant.audit import AuditLog
from assistant.catalog import Catalog
from assistant.chats import ChatService
from assistant.corpus import Corpus
from assistant.directory import DirectoryService, build_directory_service
from assistant.ingest_roots import IngestRoots
from assistant.jobs import IngestJobs
from assistant.library import Library
from assistant.models.service import ModelService
from assistant.quality import QualityService
from assistant.runtime import RuntimeSettings
from assistant.settings import Settings
from assistant.sources import SourceService
from ingest.pipeline import IngestService
from storage.account_store import AccountStore
from storage.api_tokens import ApiTokenStore
from storage.chat_store import ChatStore
from storage.db import Database
from storage.job_store import JobStore
from storage.library import LibraryStore
from storage.quality import QualityStore
from storage.sources import SourceStore


@dataclass
class WebServices:
    """Who may do and read what, and the per-user features built on the answering service."""

    audit: AuditLog
    accounts: AccountService
    access: AccessService
    chats: ChatService
    library: Library
    jobs: IngestJobs
    roots: IngestRoots
    runtime: RuntimeSettings
    tokens: ApiTokenService
    catalog: Catalog
    models: ModelService
    quality: QualityService
    sources: SourceService
    directory: DirectoryService
    """Sign-in with any method that is on (company directory, local accounts), and the directory sync."""


def build_web_services(
    settings: Settings, db: Database, corpus: Corpus, ingest: IngestService[Corpus], answers: AnswerService
) -> WebServices:
    """Wire the web services on an already migrated database (nothing starts until used)."""
    account_store = AccountStore(db)
    library_store = LibraryStore(db)
    audit = AuditLog(account_store)
    access = AccessService(account_store, corpus.store, audit)
    runtime = RuntimeSettings(answers.live, answers, audit)
    accounts = AccountService(account_store, settings.web, audit)
    roots = IngestRoots(answers.live, audit)
    jobs = IngestJobs(ingest, settings, audit, JobStore(db), roots)
    return WebServices(
        audit=audit,
        accounts=accounts,
        access=access,
        chats=ChatService(answers, access, ChatStore(db), library_store, audit),
        library=Library(library_store, access, corpus, audit, jobs.upload_dir),
        jobs=jobs,
        roots=roots,
        runtime=runtime,
        tokens=ApiTokenService(ApiTokenStore(db), account_store, audit),
        catalog=Catalog(library_store, access),
        models=ModelService(answers.live, answers, runtime, audit),
        quality=QualityService(QualityStore(db), library_store, audit),
        sources=SourceService(SourceStore(db), corpus, jobs, settings.sources, audit),
        directory=build_directory_service(settings.directory, account_store, accounts, audit, settings.oidc),
    )
