"""``/favicon.ico``: browsers ask for it on every page, whatever ``<link rel="icon">`` says: send them to it."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static

FAVICON = "diagnosis/favicon.ico"


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    return HttpResponsePermanentRedirect(static(FAVICON))
