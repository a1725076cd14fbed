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


class ModelBusy(GenerationError):
    """A question waited its longest for the model (``generation.queue_wait_s``); the user should try again."""


class AccessError(EnclaveError):
    """The caller may not do or see this (HTTP 403, or 401 when nobody is signed in)."""


class PermissionDenied(AccessError):
    """The signed-in user's role or grants do not allow the action or the object."""


class SignInFailed(AccessError):
    """The user name or password is wrong, or the account is disabled; deliberately not saying which."""


class AccountLocked(SignInFailed):
    """Too many failed sign-ins in a row; the account unlocks after a while."""


class InvalidInput(EnclaveError):
    """A value a user typed or uploaded is not acceptable; the message says why."""


class DiskFullError(EnclaveError):
    """The disk holding the data dir or the database ran out of space; what was committed before is kept."""
