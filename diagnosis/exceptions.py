"""Domain errors. The API's exception handler maps them to 4xx responses with a readable ``detail``."""

from __future__ import annotations

from typing import Any


class ApplicationError(Exception):
    status_code = 400

    def __init__(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
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
