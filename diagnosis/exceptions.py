"""Domain errors. The API's exception handler maps them to 4xx responses with a readable ``detail``."""

from __future__ import annotations

import re
from typing import Any

from django.db import InterfaceError, OperationalError

try:  # PostgreSQL's driver; SQLite setups may run without it
    import psycopg

    _DRIVER_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, psycopg.InterfaceError)
except ImportError:  # pragma: no cover - psycopg is in requirements.txt
    _DRIVER_ERRORS = ()

# Seconds a client should wait before retrying while the database cannot be reached.
DATABASE_RETRY_AFTER_SECONDS = 5
DATABASE_UNAVAILABLE_MESSAGE = "The service is temporarily unavailable (its database cannot be reached). Please retry."

# An absolute filesystem path of two or more parts ("/var/lib/pneumoweb/models/v1/model.keras"), not part of a URL.
_SERVER_PATH = re.compile(r"(?<![\w:/.~-])/(?:[^\s/'\"()\[\]<>,;:]+/)+([^\s/'\"()\[\]<>,;:]*)")


def public_message(text: str) -> str:
    """``text`` without server paths, for a user to read: each absolute path becomes ``…/<its last part>``.

    Exception messages (``OSError``, mlcore's artifact errors) name files by their full path; users need to know
    which file, not where the server keeps it. Apply it where an error becomes user-facing: stored on a study or a
    training run, or shown in a page or an admin message.
    """
    return _SERVER_PATH.sub(lambda match: f"…/{match.group(1)}" if match.group(1) else "…/", text)


class ApplicationError(Exception):
    status_code = 400
    # Set on errors that pass (storage full...): answered as a ``Retry-After`` header.
    retry_after_seconds: int | None = None

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)  # str(exc), for logs, keeps the full text
        self.message = public_message(message)  # shown to users: API detail, pages, admin messages, study errors
        self.extra = extra or {}


class InvalidInputError(ApplicationError):
    """A request's input is not acceptable (the message says which field and why)."""

    status_code = 400


class InvalidUploadError(InvalidInputError):
    """The uploaded file is not an image we can screen (wrong format, corrupt, unsupported DICOM)."""

    status_code = 400


class UnreadableImageError(InvalidUploadError):
    """The image's pixels cannot be decoded or screened (found by the worker, or by the upload check)."""

    status_code = 400


class UnsupportedMediaError(InvalidUploadError):
    status_code = 415


class UploadTooLargeError(InvalidUploadError):
    status_code = 413


class StudyStateError(ApplicationError):
    status_code = 409


class ModelVersionError(ApplicationError):
    """A model version cannot be registered, calibrated or given traffic as asked."""

    status_code = 400


class ModelArtifactError(ModelVersionError):
    """A model artifact is missing, unreadable, corrupt, or its weights are not the ones registered."""

    status_code = 400


class TrainingCancelledError(ApplicationError):
    """A training run stopped because an admin cancelled it."""

    status_code = 409


class NoServingModelError(ApplicationError):
    status_code = 503


class StorageError(ApplicationError):
    """The file storage cannot take a write now (full, over quota, read-only or failing): worth a later retry.

    Says nothing about paths or devices: the message is shown to users, the cause goes to the logs.
    """

    status_code = 503
    retry_after_seconds = 60
    default_message = "The server's storage is temporarily unavailable. Please try again in a few minutes."

    def __init__(self, message: str = "", *, errno: int | None = None) -> None:
        super().__init__(message or self.default_message)
        self.errno = errno


class StorageFullError(StorageError):
    """No space (or quota) left on the storage filesystem."""

    status_code = 507
    default_message = "The server's storage is full, so the file could not be saved. Please try again later."


def database_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` means the database cannot be used right now (unreachable, connection lost, failing over).

    Django wraps the driver's connection errors (psycopg's ``OperationalError``, ``InterfaceError``) in its own
    classes of the same names; the driver's are checked too, for an error raised outside Django's wrapper.
    """
    while exc is not None:
        if isinstance(exc, (OperationalError, InterfaceError, *_DRIVER_ERRORS)):
            return True
        exc = exc.__cause__
    return False
