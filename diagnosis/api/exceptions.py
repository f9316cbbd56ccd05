"""Errors of the API are JSON, always.

Domain errors go through DRF's exception handler and become 4xx JSON with a readable ``detail``; errors that pass
(database unreachable, storage full) carry ``Retry-After``, and the database's own message (host, port, driver
text) never reaches the client. The answers Django gives before or outside DRF (no URL matched, e.g. a malformed
study id; a bad request) come from the project's ``handler404``/``handler400``/``handler403``, which answer JSON
under ``/api/``; ``handler500`` is ``diagnosis.ops.errors.server_error``.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from diagnosis.exceptions import (
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE_MESSAGE,
    ApplicationError,
    database_unavailable,
)

logger = logging.getLogger(__name__)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ApplicationError):
        body: dict[str, Any] = {"detail": exc.message}
        if exc.extra:
            body["extra"] = exc.extra
        response = Response(body, status=exc.status_code)
        if exc.retry_after_seconds:
            response["Retry-After"] = str(exc.retry_after_seconds)
        return response
    if database_unavailable(exc):
        logger.error("database unavailable: answering 503", exc_info=exc)
        set_rollback()
        return Response(
            {"detail": DATABASE_UNAVAILABLE_MESSAGE},
            status=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
        )
    return exception_handler(exc, context)


def _is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Bad request."}, status=400)
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "You do not have permission to perform this action."}, status=403)
    return defaults.permission_denied(request, exception)  # type: ignore[arg-type]
