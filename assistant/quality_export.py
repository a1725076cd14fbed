"""The install's own QA set written in the shared format (docs/ + qa.jsonl), for ``run.py eval`` and ``advise``.

``docs/`` holds a copy of every document of the exported collections whose file is still on
disk, as ``docs/<collection>/<path>`` (two folders ingested into one collection that hold the
same path get the folder's name in between); ``qa.jsonl`` cites them by that path.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from assistant.audit import AuditLog, Principal, require_admin
from assistant.audit_events import QualitySetExported
from assistant.errors import InvalidInput
from storage.library import DocumentRecord, LibraryStore
from storage.quality import ExpectedRecord, QualityStore


@dataclass
class QAExport:
    """What an export wrote: the folder, its questions, and the documents it copied or could not find."""

    folder: Path
    questions: int = 0
    unanswerable: int = 0
    documents: int = 0
    missing: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        """The summary ``run.py quality export --json`` prints."""
        return {"folder": str(self.folder), "questions": self.questions, "unanswerable": self.unanswerable,
                "documents": self.documents, "missing": self.missing}


def _original(doc: DocumentRecord) -> Path | None:
    """The ingested file, when it is still on disk inside the folder it was ingested from."""
    root = Path(doc.root).resolve()
    path = (root / doc.path).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


def _placed(docs: list[DocumentRecord]) -> dict[int, str]:
    """Each document's path under docs/, unique even where two folders of a collection share a path."""
    placed: dict[int, str] = {}
    taken: set[str] = set()
    for doc in docs:
        name = f"{doc.collection}/{doc.path}"
        n = 1
        while name in taken:
            folder = PurePosixPath(doc.root).name or "folder"
            name = f"{doc.collection}/{folder}{'' if n == 1 else f'-{n}'}/{doc.path}"
            n += 1
        taken.add(name)
        placed[doc.id] = name
    return placed


class QAExporter:
    """Writes the expected answers of one collection, or all, with their documents."""

    def __init__(self, store: QualityStore, library: LibraryStore, audit: AuditLog) -> None:
        self.store = store
        self.library = library
        self.audit = audit

    def export(self, actor: Principal, folder: Path, collection: str | None = None) -> QAExport:
        """Write ``folder/qa.jsonl`` and ``folder/docs/``; ``folder`` must be new or empty."""
        require_admin(actor)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise InvalidInput(f"{folder} is not an empty folder: export into a new one")
        expected = self.store.expected(collection)
        if not expected:
            raise InvalidInput("no expected answers have been written" + (f" in {collection}" if collection else ""))
        collections = sorted({e.collection for e in expected})
        docs = [d for c in collections for d in self.library.documents(c)]
        placed = _placed(docs)
        summary = QAExport(folder)
        (folder / "docs").mkdir(parents=True, exist_ok=True)
        for doc in docs:
            original = _original(doc)
            if original is None:
                summary.missing.append(f"{doc.collection}: {Path(doc.root) / doc.path}")
                continue
            target = folder / "docs" / placed[doc.id]
            if not target.resolve().is_relative_to((folder / "docs").resolve()):
                raise InvalidInput(f"collection {doc.collection!r} cannot be a folder name: export it on its own")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(original, target)
            summary.documents += 1
        with (folder / "qa.jsonl").open("w", encoding="utf-8") as out:
            for e in expected:
                out.write(json.dumps(self._line(e, placed)) + "\n")
        summary.questions, summary.unanswerable = len(expected), sum(1 for e in expected if not e.answerable)
        self.audit.record(actor, QualitySetExported(str(folder), collection, len(expected)))
        return summary

    def export_zip(self, actor: Principal, collection: str | None = None) -> tuple[Path, QAExport]:
        """The export as one zip file in a new temporary folder (the admin page offers it for download)."""
        scratch = Path(tempfile.mkdtemp(prefix="enclave-qa-"))
        name = f"enclave-qa-{collection}" if collection else "enclave-qa"
        summary = self.export(actor, scratch / name, collection)
        archive = shutil.make_archive(str(scratch / name), "zip", root_dir=scratch, base_dir=name)
        shutil.rmtree(scratch / name)
        return Path(archive), summary

    @staticmethod
    def _line(e: ExpectedRecord, placed: dict[int, str]) -> dict[str, object]:
        """One qa.jsonl line in the shared format."""
        if e.document_id is not None and e.document_id in placed:
            sources = [{"file": placed[e.document_id], "page": e.page}]
        elif e.file:  # the document was removed since: its path as written, which eval will not find
            sources = [{"file": f"{e.collection}/{e.file}", "page": e.page}]
        else:
            sources = []
        return {"id": f"{e.collection}-{e.id}", "question": e.question, "answer": e.answer if e.answerable else None,
                "sources": sources, "answerable": e.answerable, "type": e.origin}
