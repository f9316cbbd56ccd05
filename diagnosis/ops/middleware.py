"""Cross-cutting HTTP middleware: request ids, and no caching of dynamic responses."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers, patch_cache_control

from diagnosis.log_context import request_id_var

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Request ids: taken from ``X-Request-ID`` when a proxy sets a sane one, otherwise generated; echoed back."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        # An attribute of our own on the request (read back with getattr, e.g. by the audit log): not in the stubs.
        request.request_id = request_id  # type: ignore[attr-defined]
        token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            request_id_var.reset(token)
        response["X-Request-ID"] = request_id
        return response


class NoStoreMiddleware:
    """``Cache-Control: no-store`` on every response that reaches Django.

    Pages and API answers carry patient data (names of studies, findings, images); no browser or shared cache
    may keep them. Static files never get here: WhiteNoise, placed before this middleware, answers them.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.has_header("Cache-Control"):
            patch_cache_control(response, no_store=True, private=True)
        else:
            add_never_cache_headers(response)
        return response
