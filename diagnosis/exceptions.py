"""Domain errors. The API's exception handler maps them to 4xx responses with a readable ``detail``."""

from __future__ import annotations

import re
from typing import Any

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
