"""The site's 500 handler: an unreachable database answers 503 with ``Retry-After``, not a 500 page.

Django turns an exception into a response at every middleware boundary (``convert_exception_to_response``), so a
middleware never sees an exception raised by another middleware or a view; the 500 handler does, wherever it was
raised: the session or auth middleware loading the user, axes, a view, a lazy queryset in a template. The API's
views answer the same through their own exception handler (``diagnosis.api.exceptions``), in DRF's JSON.

Nothing here may touch the database: the page is rendered without a request context (no user, no session).
"""

from __future__ import annotations

import logging
import sys

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views import defaults

from diagnosis.exceptions import DATABASE_RETRY_AFTER_SECONDS, DATABASE_UNAVAILABLE_MESSAGE, database_unavailable

logger = logging.getLogger(__name__)


def _wants_json(request: HttpRequest) -> bool:
    # The API, and the dashboard's scripts (they ask for JSON and would choke on a page).
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or ("application/json" in accept and "text/html" not in accept)


def service_unavailable(request: HttpRequest) -> HttpResponse:
    """503 + ``Retry-After``: JSON ``{"detail": ...}`` for the API and scripts, a plain page for people."""
    response: HttpResponse
    if _wants_json(request):
        response = JsonResponse({"detail": DATABASE_UNAVAILABLE_MESSAGE}, status=503)
    elif request.path == "/metrics":
        response = HttpResponse(
            "# database temporarily unavailable\n", status=503, content_type="text/plain; charset=utf-8"
        )
    else:
        html = render_to_string(
            "503.html", {"message": DATABASE_UNAVAILABLE_MESSAGE, "retry_after": DATABASE_RETRY_AFTER_SECONDS}
        )
        response = HttpResponse(html, status=503)
    response["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: called by Django while the uncaught exception is being handled (``sys.exc_info()``)."""
    if database_unavailable(sys.exc_info()[1]):
        return service_unavailable(request)
    if request.path_info.startswith("/api/"):  # the API answers JSON, always
        return JsonResponse(
            {"detail": "Server error. The team can find it in the logs by its X-Request-ID."}, status=500
        )
    return defaults.server_error(request)
