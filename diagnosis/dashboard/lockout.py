"""django-axes hooks: a per-address limit on top of the per-account one, and a lockout answer with ``Retry-After``.

Axes counts failed logins per lockout parameter (here: username+address, and address alone) but compares every
count with ONE limit (``AXES_FAILURE_LIMIT``). Password spraying (one password tried against many usernames from
one address) needs the address alone to be limited too, but with a higher limit than one account, or a ward
behind one NAT address would be locked out by a few typos. ``login_failure_limit`` (a callable
``AXES_FAILURE_LIMIT``) gets both from axes' own atomic counters: the address's count is always at least the
account's, so answering "the account limit" once the account reached it, and "the address limit" otherwise, locks
exactly when the account count reaches ``PNEUMO_LOGIN_FAILURE_LIMIT`` or the address count reaches
``PNEUMO_LOGIN_IP_FAILURE_LIMIT``.
"""

from __future__ import annotations

from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_cool_off
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render


def login_failure_limit(request: HttpRequest, credentials: dict[str, Any] | None) -> int:
    """The failure limit axes applies to this attempt (see the module docstring for why it is a callable)."""
    account_limit: int = settings.PNEUMO_LOGIN_FAILURE_LIMIT
    address_limit: int = max(settings.PNEUMO_LOGIN_IP_FAILURE_LIMIT, account_limit)
    handler = AxesProxyHandler.get_implementation()
    get_user_attempts = getattr(handler, "get_user_attempts", None)
    if get_user_attempts is None:  # a handler without per-parameter counters: the account limit alone
        return account_limit
    # One queryset per AXES_LOCKOUT_PARAMETERS entry, in order: the first is username+address.
    per_account = get_user_attempts(request, credentials)[0]
    account_failures = per_account.aggregate(total=Sum("failures_since_start"))["total"] or 0
    return account_limit if account_failures >= account_limit else address_limit


def retry_after_seconds(request: HttpRequest | None = None) -> int:
    """Seconds until a lockout ends: every refused attempt restarts the cool-off (axes' default), so the full one."""
    cool_off = get_cool_off(request)
    return max(1, int(cool_off.total_seconds())) if cool_off else 3600


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: 429 with ``Retry-After``; JSON for scripts and the API, a page for people."""
    seconds = retry_after_seconds(request)
    minutes = max(1, round(seconds / 60))
    message = f"Too many failed logins. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    wants_json = request.path.startswith("/api/") or "application/json" in request.headers.get("Accept", "")
    if wants_json or request.headers.get("X-Requested-With") == "XMLHttpRequest":
        response: HttpResponse = JsonResponse({"detail": message, "retry_after": seconds}, status=429)
    else:
        response = render(request, "registration/locked_out.html", {"message": message}, status=429)
    response["Retry-After"] = str(seconds)
    return response
