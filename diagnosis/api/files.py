"""Serve the PNGs the worker rendered (display image, Grad-CAM heatmap, overlay) from the default storage.

Only files PneumoWeb wrote itself are served, always as ``image/png`` with ``nosniff`` and ``no-store``: the
original upload (possibly DICOM, possibly hostile bytes) is never sent back raw. The views that call this have
already checked that the user may see the study.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models.fields.files import FieldFile
from django.http import FileResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

PNG_MEDIA_TYPE = "image/png"


class FirstRendererNegotiation(BaseContentNegotiation):
    """Ignore the client's ``Accept``: a file endpoint answers PNG bytes, or JSON for an error.

    An ``<img>`` tag or a client asking for ``Accept: image/png`` must not get a 406 before the view runs.
    """

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        first = list(renderers)[0]
        return first, first.media_type


def png_response(field_file: FieldFile, *, filename: str) -> FileResponse:
    """Stream a stored PNG. Raises ``FileNotFoundError`` (or another ``OSError``) when the storage lacks it."""
    if not field_file.name:
        raise FileNotFoundError("No file is stored in this field.")
    handle = field_file.storage.open(field_file.name, "rb")
    response = FileResponse(handle, content_type=PNG_MEDIA_TYPE, as_attachment=False, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    # Patient images must not linger in shared or browser caches.
    response["Cache-Control"] = "private, no-store"
    return response
