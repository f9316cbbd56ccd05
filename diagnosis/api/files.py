"""Serve the PNGs the worker rendered (display image, Grad-CAM heatmap, overlay) from the default storage.

Only files PneumoWeb wrote itself are served, always as ``image/png`` with ``nosniff`` and ``no-store``: the
original upload (possibly DICOM, possibly hostile bytes) is never sent back raw. The views that call this have
already checked that the user may see the study.
"""

from __future__ import annotations

from typing import Any

from django.db.models.fields.files import FieldFile
from django.http import FileResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

PNG_MEDIA_TYPE = "image/png"


class FirstRendererNegotiation(BaseContentNegotiation):
    """Ignore the client's ``Accept``: a file endpoint answers PNG bytes, or JSON for an error.

    An ``<img>`` tag or a client asking for ``Accept: image/png`` must not get a 406 before the view runs.
    """

    def select_parser(self, request: Request, parsers: list[Any]) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


def png_response(field_file: FieldFile, *, filename: str) -> FileResponse:
    """Stream a stored PNG. Raises ``FileNotFoundError`` (or another ``OSError``) when the storage lacks it."""
    handle = field_file.storage.open(field_file.name, "rb")
    response = FileResponse(handle, content_type=PNG_MEDIA_TYPE, as_attachment=False, filename=filename)
    response["X-Content-Type-Options"] = "nosniff"
    # Patient images must not linger in shared or browser caches.
    response["Cache-Control"] = "private, no-store"
    return response
