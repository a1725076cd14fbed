"""Enclave's exception tree: raised inside, translated once at each edge (CLI, UI, HTTP)."""

from __future__ import annotations


class EnclaveError(Exception):
    """Base of every error Enclave raises on purpose; its message is shown to the user."""


class ConfigError(EnclaveError):
    """A setting is missing, contradictory or points at something that does not exist."""


class ModelMismatchError(EnclaveError):
    """The index was built with another embedding model than the one configured."""


class SkipFile(EnclaveError):
    """A file cannot be ingested; the message is the one-line reason shown to the admin."""


class IndexCorruptError(EnclaveError):
    """An index file on disk cannot be read; it is rebuilt from the database."""


class NotFoundError(EnclaveError):
    """A collection, document or chunk that was asked for does not exist."""


class GenerationError(EnclaveError):
    """The language model could not answer; the message names the fix."""


class BackendUnavailable(GenerationError):
    """The configured model server cannot be reached or lacks the model."""
