"""Enclave's exception tree: raised inside, translated once at each edge (CLI, UI, HTTP).

Each package owns its errors: ``storage.errors`` (the database and indexes), ``ingest.errors``
(reading files), and this module (everything the services raise). One class is the root of
them all, ``EnclaveError``; it is defined in ``storage.errors``, the lowest layer, so that
storage's and ingest's errors derive from it without importing upward, and re-exported here.
That way an edge catches every error Enclave raises on purpose with one ``except
EnclaveError`` (and FastAPI finds one handler), and ``from assistant.errors import X`` works
for every class in the tree. A tuple of per-package bases would have served the same, but
every edge would have to remember it, and one that caught only ``EnclaveError`` would let a
storage error escape as a crash.
"""

from __future__ import annotations

# The root of the tree and the lower packages' errors, importable from here as before.
from ingest.errors import IngestError as IngestError
from ingest.errors import SkipFile as SkipFile
from storage.errors import ConfigError as ConfigError
from storage.errors import DiskFullError as DiskFullError
from storage.errors import EnclaveError as EnclaveError
from storage.errors import IndexCorruptError as IndexCorruptError
from storage.errors import StorageError as StorageError


class ModelMismatchError(EnclaveError):
    """The index was built with another embedding model than the one configured."""


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


class DirectoryUnavailable(SignInFailed):
    """The company directory cannot be reached, or refused the service account; the message says which."""


class InvalidInput(EnclaveError):
    """A value a user typed or uploaded is not acceptable; the message says why."""
