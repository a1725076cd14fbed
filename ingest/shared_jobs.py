"""One ingest job's files parsed and embedded by several workers at once (the PostgreSQL index backend).

The worker that claimed the job plans it as usual (scan, hash, renames, duplicates), then offers the
files to parse in ``storage.file_claims``. Every worker, that one included, claims files one by one,
parses them in its parser processes, embeds them, and writes each file's document and chunks in one
transaction that also marks the file done and records it on the job's progress; the index rows
follow, and ``IndexBackend.save`` adds any a killed worker left out. The planning worker waits until
every file is done (taking over the files of a worker that stopped renewing its lease), then removes
what is gone and ends the job with the counts of all the files, whichever worker did them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ingest.parser_process import PreparedFile
from ingest.scanner import FileEntry
from storage.documents import NewDocument, searchable_text
from storage.file_claims import ClaimLost, FileClaim, FileClaims, OfferedFile

if TYPE_CHECKING:
    from ingest.pipeline import IngestProgress, IngestReport, IngestService

log = logging.getLogger(__name__)


class _ClaimLease:
    """Renews the lease on the files a worker holds, on a thread, while it works on them."""

    def __init__(self, claims: FileClaims, worker: str) -> None:
        self.claims, self.worker = claims, worker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="enclave-file-claims", daemon=True)

    def __enter__(self) -> _ClaimLease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.claims.lease_s / 4):
            try:
                self.claims.heartbeat(self.worker)
            except Exception:  # a database blip: the next beat tries again, the lease has three more chances
                log.exception("could not renew the file claims of %s", self.worker)


class SharedFiles:
    """Claims, parses, embeds and writes files of shared jobs for one worker."""

    def __init__(self, service: IngestService[Any], claims: FileClaims, worker: str) -> None:
        self.service = service
        self.claims = claims
        self.worker = worker

    def run_job(self, job_id: int, todo: list[tuple[FileEntry, str, bool]], report: IngestReport,
                progress: IngestProgress) -> None:
        """Offer a planned job's files, work on them beside other workers, add every file's outcome to ``report``."""
        self.claims.offer(job_id, [OfferedFile(e.rel, digest, is_update) for e, digest, is_update in todo])
        wait_s = min(1.0, max(0.1, self.claims.lease_s / 20))
        self.work(job_id, progress)
        while self.claims.remaining(job_id):
            progress.doing("waiting for other workers to finish this job's files")
            time.sleep(wait_s)  # files held by others: done soon, or open again once their lease runs out
            self.work(job_id, progress)
        for done in self.claims.outcomes(job_id, [e.rel for e, _, _ in todo]):
            if done.outcome == "failed":
                report.failed.append((done.path, done.reason))
                continue
            report.updated += done.outcome == "updated"
            report.added += done.outcome == "added"
            report.embedded_chunks += done.chunks
        progress.flush()  # before the job is marked done: no reader sees "done" with files missing

    def work(self, job_id: int | None = None, progress: IngestProgress | None = None) -> int:
        """Handle open files (of ``job_id``, or of any running job) until none is left; returns how many."""
        from ingest.pipeline import _Quiet

        first = self.claims.claim(self.worker, 1, job_id)
        if not first:  # checked before any parser process starts: idle workers ask this every poll
            return 0
        held: deque[FileClaim] = deque()
        window = self.service.settings.parsers() + 1  # the next file parses while this one embeds
        handled = 0
        try:
            with _ClaimLease(self.claims, self.worker):
                todo = self._claimed(first[0], job_id, held)
                for entry, _, _, outcome in self.service._prepared(todo, progress or _Quiet(), window):
                    claim = held.popleft()
                    if isinstance(outcome, str):
                        self._failed(claim, outcome)
                    else:
                        self._write(claim, entry, outcome)
                    handled += 1
        except BaseException:
            self.claims.release(self.worker)  # stopping or failing: others take these files at once
            raise
        return handled

    def _claimed(self, first: FileClaim, job_id: int | None,
                 held: deque[FileClaim]) -> Iterator[tuple[FileEntry, str, bool]]:
        """``first``, then files claimed one by one as the parsers have room; an unreadable file fails at once."""
        found = [first]
        while found:
            claim = found[0]
            path = Path(claim.root) / claim.file.path
            try:
                stat = path.stat()
            except OSError as exc:
                self._failed(claim, f"cannot read file: {exc.strerror or exc}")
            else:
                held.append(claim)
                yield FileEntry(claim.file.path, path, stat.st_size, stat.st_mtime_ns), claim.file.content_hash, \
                    claim.file.is_update
            found = self.claims.claim(self.worker, 1, job_id)

    def _failed(self, claim: FileClaim, reason: str) -> None:
        try:
            self.claims.fail(claim, self.worker, reason)
        except ClaimLost as exc:
            log.warning("%s", exc)

    def _write(self, claim: FileClaim, entry: FileEntry, prepared: PreparedFile) -> None:
        """Embed one file and write it, its claim and its progress in one transaction, then index it."""
        corpus = self.service.corpus
        texts = [searchable_text(entry.rel, c.heading, c.text) for c in prepared.chunks]
        vectors = (corpus.embedder.embed_passages(texts, background=True) if texts
                   else np.zeros((0, 0), dtype=np.float32))
        outcome = "updated" if claim.file.is_update else "added"
        doc = NewDocument(entry.rel, claim.file.content_hash, entry.size, entry.mtime_ns, prepared.title,
                          prepared.pages, prepared.chunks, vectors, prepared.ocr_used)
        done = self.claims.completion(claim, self.worker, outcome, len(texts))
        try:
            removed, added = corpus.store.write_documents(claim.collection_id, claim.root, [doc], done)
        except ClaimLost as exc:  # this worker was too slow: another one owns the file now, and writes it
            log.warning("%s: %s; its chunks were not written", entry.rel, exc)
            return
        index = corpus.index(claim.collection_id)
        index.remove(removed)
        index.add(np.array(added, dtype=np.int64), vectors, texts)
