"""The embedding pass of an ingest: a thread that embeds a collection's waiting chunks.

An ingest writes each parsed file's chunks without embeddings first, so they are
keyword-searchable (BM25) within seconds; this pass embeds them behind the parser, oldest
first, and makes them dense-searchable. The parser gets a head start: embedding begins once
parsing is done or ``HEAD_START_GROUPS`` groups wait, so on a small machine a folder's files
are all keyword-searchable before the cores go to the model, and a large sync still embeds
alongside its parsing. It works from the database, not from a queue: the
chunks a killed run wrote but never embedded are simply the oldest waiting, and the next run
of the collection embeds them.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ingest.pipeline import IngestTarget

HEAD_START_GROUPS = 8  # groups of waiting chunks after which embedding starts although parsing goes on


class EmbeddingPass:
    """Embeds a collection's chunks that wait for their embedding, while the run goes on parsing."""

    def __init__(self, corpus: IngestTarget, collection_id: int, group_chunks: int) -> None:
        """``group_chunks``: chunks embedded, stored and indexed together (one transaction)."""
        self.corpus = corpus
        self.collection_id = collection_id
        self.group_chunks = group_chunks
        self.embedded_chunks = 0
        self._written = threading.Event()  # the keyword write committed new chunks
        self._last = threading.Event()  # the run has written all it will
        self._stop = threading.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"embed-c{collection_id}")
        self._future: Future[None] = self._executor.submit(self._run)

    def wrote(self) -> None:
        """New chunks are committed without embeddings: embed them next."""
        self._written.set()

    def finish(self) -> int:
        """Embed what still waits and return the chunks this pass embedded; raises what the pass raised."""
        self._last.set()
        self._written.set()
        try:
            self._future.result()
        finally:
            self._executor.shutdown(wait=True)
        return self.embedded_chunks

    def abort(self) -> None:
        """Stop after the current group (the run failed); what was not embedded waits for the next run."""
        self._stop.set()
        self._written.set()
        self._executor.shutdown(wait=True)

    def _run(self) -> None:
        store = self.corpus.store
        head_start = self.group_chunks * HEAD_START_GROUPS
        while not self._stop.is_set():
            # Read before looking: once the run is done writing, the look below sees every chunk it wrote
            # (read after, a finish() in between ended the pass with chunks still waiting).
            last = self._last.is_set()
            waiting = store.unembedded(self.collection_id, self.group_chunks if last else head_start)
            if not waiting and last:
                return
            if not (last or len(waiting) >= head_start):  # parsing goes on, and no backlog yet: let it lead
                self._written.wait(timeout=1.0)  # a run that died without abort() never leaves it waiting
                self._written.clear()
                continue
            for ids, texts in store.iter_chunk_texts(waiting[: self.group_chunks]):
                vectors = self.corpus.embedder.embed_passages(texts, background=True)
                store.update_embeddings(ids, vectors)
                self.corpus.index(self.collection_id).add_embedded(ids, vectors, texts)
                self.embedded_chunks += len(ids)
