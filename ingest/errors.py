"""The errors ingest raises on purpose, under Enclave's one root (``storage.errors.EnclaveError``)."""

from __future__ import annotations

from storage.errors import EnclaveError


class IngestError(EnclaveError):
    """Base of the errors reading folders and files raises on purpose."""


class SkipFile(IngestError):
    """A file cannot be ingested; the message is the one-line reason shown to the admin."""
