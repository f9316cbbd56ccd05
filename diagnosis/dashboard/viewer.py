"""The study viewer's endpoints (issue 10): the 16-bit rendition, the raw activation map, viewer preferences.

* ``studies/<id>/image16``: the lossless 16-bit rendition of a >8-bit grayscale DICOM that the worker stored when it
  screened the study (:mod:`mlcore.rendition`): raw little-endian ``uint16`` samples, row-major, sent gzip-encoded
  (``Content-Encoding: gzip``, so ``fetch`` hands the page the samples) and described by ``X-Rendition-*`` headers
  (``modality = sample * slope + intercept``). 404 when the study has none (PNG/JPEG, 8-bit DICOM, screened before
  the rendition existed): the viewer then windows the 8-bit display PNG. Nothing is decoded here: the file is ours,
  written by a worker, and is streamed as stored.
* ``studies/<id>/activation``: the Grad-CAM activations of the primary prediction as a small grayscale PNG, coloured
  in the browser. 404 for predictions made before: the viewer falls back to the jet-coloured heatmap.
* ``viewer/preferences``: POST JSON to remember the reader's heatmap settings.

Both images are authorised like the other image endpoints (a study the user may see) and audited as
``study.image_viewed`` with ``what`` = ``image16`` / ``activation``, once the file is known to exist.
"""

from __future__ import annotations

import gzip
import json
import logging
import uuid
from typing import IO

from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.http import require_GET, require_POST

from diagnosis.dashboard.views import radiologist_required_json, request_user, study_or_404
from diagnosis.exceptions import ApplicationError
from diagnosis.models import Study
from diagnosis.selectors.studies import study_primary_prediction
from diagnosis.selectors.viewer import viewer_settings_for
from diagnosis.services.studies import study_record_view
from diagnosis.services.viewer import viewer_preference_update

logger = logging.getLogger(__name__)

RENDITION_MEDIA_TYPE = "application/octet-stream"
_CHUNK = 256 * 1024

# The rendition's description, as response headers (``X-Rendition-<Name>``) for scripts and API clients.
RENDITION_HEADERS = {
    "width": "Width",
    "height": "Height",
    "bits_stored": "Bits-Stored",
    "slope": "Slope",
    "intercept": "Intercept",
    "photometric": "Photometric",
    "window_center": "Window-Center",
    "window_width": "Window-Width",
    "min": "Min",
    "max": "Max",
}


def _private(response: HttpResponseBase) -> HttpResponseBase:
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"  # patient images linger in no cache
    return response


def _missing(what: str, study: Study) -> JsonResponse:
    return JsonResponse({"detail": f"This study has no {what} (the study is {study.status})."}, status=404)


def _open(field_file: FieldFile, what: str, study: Study) -> IO[bytes] | None:
    try:
        handle: IO[bytes] = field_file.storage.open(str(field_file.name), "rb")
        return handle
    except FileNotFoundError:
        logger.exception("Stored %s of study %s is missing: %s", what, study.id, field_file.name)
        return None


def _audited(request: HttpRequest, study: Study, what: str, response: HttpResponseBase) -> HttpResponseBase:
    try:
        study_record_view(study=study, user=request_user(request), request=request, what=what)
    except Exception:
        response.close()
        raise
    return _private(response)


@require_GET
@radiologist_required_json
def study_image16(request: HttpRequest, study_id: uuid.UUID) -> HttpResponseBase:
    study = study_or_404(request, study_id)
    info = study.display_image_16_info or {}
    if not study.display_image_16:
        return _missing("16-bit rendition", study)
    handle = _open(study.display_image_16, "16-bit rendition", study)
    if handle is None:
        return _missing("16-bit rendition", study)
    response: HttpResponseBase
    if "gzip" in request.headers.get("Accept-Encoding", ""):
        response = FileResponse(handle, content_type=RENDITION_MEDIA_TYPE)
        response["Content-Encoding"] = "gzip"
    else:  # a client that cannot take gzip gets the samples themselves (zlib on our own file; no image decoder)
        stream = gzip.GzipFile(fileobj=handle, mode="rb")
        response = StreamingHttpResponse(iter(lambda: stream.read(_CHUNK), b""), content_type=RENDITION_MEDIA_TYPE)
        response["Content-Length"] = str(int(info.get("width", 0)) * int(info.get("height", 0)) * 2)
    response["Content-Disposition"] = f'inline; filename="{study.id}-image16.u16"'
    for key, name in RENDITION_HEADERS.items():
        if key in info:
            response[f"X-Rendition-{name}"] = str(info[key])
    response["X-Rendition-Format"] = "uint16le"
    return _audited(request, study, "image16", response)


@require_GET
@radiologist_required_json
def study_activation(request: HttpRequest, study_id: uuid.UUID) -> HttpResponseBase:
    study = study_or_404(request, study_id)
    prediction = study_primary_prediction(study)
    if prediction is None or not prediction.activation:
        return _missing("activation map", study)
    handle = _open(prediction.activation, "activation map", study)
    if handle is None:
        return _missing("activation map", study)
    response = FileResponse(handle, content_type="image/png", filename=f"{study.id}-activation.png")
    return _audited(request, study, "activation", response)


_BOOL_FIELDS = ("heatmap_visible",)
_INT_FIELDS = ("heatmap_opacity", "threshold")


@require_POST
@radiologist_required_json
def viewer_preferences(request: HttpRequest) -> JsonResponse:
    """Remember the reader's heatmap settings (JSON body with any of the fields; CSRF header as for forms)."""
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"detail": "The body must be JSON."}, status=400)
    if not isinstance(body, dict):
        return JsonResponse({"detail": "The body must be a JSON object."}, status=400)
    values: dict[str, object] = {}
    for name in _BOOL_FIELDS:
        if name in body:
            if not isinstance(body[name], bool):
                return JsonResponse({"detail": f"{name} must be true or false."}, status=400)
            values[name] = body[name]
    for name in _INT_FIELDS:
        if name in body:
            if isinstance(body[name], bool) or not isinstance(body[name], int):
                return JsonResponse({"detail": f"{name} must be a whole number."}, status=400)
            values[name] = body[name]
    if "colormap" in body:
        if not isinstance(body["colormap"], str):
            return JsonResponse({"detail": "colormap must be a string."}, status=400)
        values["colormap"] = body["colormap"]
    user = request_user(request)
    try:
        viewer_preference_update(user=user, **values)  # type: ignore[arg-type]
    except ApplicationError as exc:
        return JsonResponse({"detail": exc.message}, status=exc.status_code)
    return JsonResponse(viewer_settings_for(user=user).as_dict())
