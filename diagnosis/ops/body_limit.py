"""Refuse request bodies a route does not take, before anything reads them.

Django reads a body lazily: the CSRF check (``request.POST``), a form or DRF's parsers read it, and a multipart
file over ``FILE_UPLOAD_MAX_MEMORY_SIZE`` is spooled to disk first. An anonymous POST with a forged ``csrftoken``
cookie therefore made the server write an 89 MB body to /tmp only to answer 403. This middleware runs before any
of that and decides from the headers alone:

- every route takes at most ``PNEUMO_MAX_BODY_BYTES`` (small: forms and JSON);
- the upload routes take up to ``PNEUMO_MAX_UPLOAD_BYTES`` (plus multipart framing), and only once the caller is
  authenticated: by the session (``request.user``, set lazily by ``AuthenticationMiddleware`` from the cookie) or
  by an API token (DRF's header-only authentication classes: they read ``Authorization``, never the body).
- a chunked body without ``Content-Length`` is refused (411): Django would read it as empty, and nginx in front
  turns a client's chunked upload into one with a length anyway.

It must sit after ``AuthenticationMiddleware`` (for ``request.user``) and before anything that reads the body;
``CsrfViewMiddleware`` reads it only in ``process_view``, which runs after every middleware's ``__call__``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.request import Request
from rest_framework.settings import api_settings

# Room for the multipart boundaries, part headers and the small form fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Routes (``namespace:name``) that accept an X-ray in the body.
UPLOAD_ROUTES = frozenset({"dashboard:upload", "dashboard:upload_file", "api:study-list"})
# STOW-RS routes: their view authenticates from the headers alone (token or Basic, no session, no CSRF), then reads
# the body itself in bounded chunks up to PNEUMO_STOW_MAX_BYTES, chunked ones included (it answers 401/403/411/413).
STOW_ROUTES = frozenset({"dicomweb:stow", "dicomweb:stow-study"})


def _declared_length(request: HttpRequest) -> int | None:
    """The body's length from ``Content-Length``; ``None`` when it is sent chunked without one."""
    raw = request.META.get("CONTENT_LENGTH") or ""
    if raw.strip():
        try:
            return max(int(raw), 0)
        except ValueError:
            return None
    if "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower():
        return None
    return 0


def _route(request: HttpRequest) -> str:
    try:
        return resolve(request.path_info).view_name
    except Resolver404:
        return ""


def _is_upload_route(request: HttpRequest) -> bool:
    return _route(request) in UPLOAD_ROUTES


def _token_authenticated(request: HttpRequest) -> bool:
    """An API token in the headers names an active user. Session auth is skipped: its CSRF check reads the body."""
    drf_request = Request(request)
    # api_settings imports the dotted paths into classes; the stubs type the setting as the strings.
    authenticator_classes = cast("list[type[BaseAuthentication]]", api_settings.DEFAULT_AUTHENTICATION_CLASSES)
    for authenticator_class in authenticator_classes:
        if issubclass(authenticator_class, SessionAuthentication):
            continue
        try:
            result = authenticator_class().authenticate(drf_request)
        except Exception:  # noqa: BLE001 - a bad or expired token counts as anonymous; the view answers 401
            return False
        if result is not None:
            return True
    return False


def _authenticated(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return True
    return "HTTP_AUTHORIZATION" in request.META and _token_authenticated(request)


def _refuse(request: HttpRequest, *, status: int, detail: str, extra: dict[str, int] | None = None) -> HttpResponse:
    if request.path_info.startswith("/api/"):
        body: dict[str, object] = {"detail": detail}
        if extra:
            body["extra"] = extra
        response: HttpResponse = JsonResponse(body, status=status)
    else:
        response = HttpResponse(detail, status=status, content_type="text/plain; charset=utf-8")
    # No "Connection: close" here: WSGI forbids hop-by-hop headers from the app (runserver asserts on it).
    # The unread body is the server's to discard: gunicorn's sync workers close every connection after one answer.
    return response


class RequestBodyLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "POST" and _route(request) in STOW_ROUTES:
            return self.get_response(request)
        length = _declared_length(request)
        if length is None:
            return _refuse(request, status=411, detail="Send the request body with a Content-Length.")
        small_limit: int = settings.PNEUMO_MAX_BODY_BYTES
        if length > small_limit:
            small = {"size_bytes": length, "limit_bytes": small_limit}
            if not _is_upload_route(request):
                return _refuse(request, status=413, detail="Request body too large.", extra=small)
            if not _authenticated(request):
                # 413 rather than 401: the body is what is refused, and an anonymous caller learns nothing more.
                return _refuse(request, status=413, detail="Log in before sending a file of this size.", extra=small)
            file_limit: int = settings.PNEUMO_MAX_UPLOAD_BYTES
            if length > file_limit + MULTIPART_OVERHEAD_BYTES:
                return _refuse(
                    request,
                    status=413,
                    detail=f"The upload is {length / 1e6:.1f} MB; the limit is {file_limit / 1e6:.0f} MB.",
                    extra={"size_bytes": length, "limit_bytes": file_limit},
                )
        return self.get_response(request)
