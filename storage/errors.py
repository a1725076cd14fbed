"""The root of Enclave's exception tree, and the errors storage raises.

``EnclaveError`` and ``ConfigError`` are defined here, in the lowest layer, because an edge
(the CLI, a Gradio handler, FastAPI's exception handler) catches errors by class: for
``except EnclaveError`` to catch a storage or ingest error, that error must derive from the
one ``EnclaveError``, and storage may import nothing above it. ``assistant.errors`` re-exports
them with the rest of the tree.
"""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of every error Enclave raises on purpose; its message is shown to the user."""


class ConfigError(EnclaveError):
    """A setting is missing, contradictory or points at something that does not exist."""


class StorageError(EnclaveError):
    """Base of the errors the database and index layer raises on purpose."""


class IndexWriterBusy(StorageError):
    """Another worker already writes this data dir's in-process index versions."""


class IndexCorruptError(StorageError):
    """An index file on disk cannot be read; it is rebuilt from the database."""


class DiskFullError(StorageError):
    """The disk holding the data dir or the database ran out of space; what was committed before is kept."""
