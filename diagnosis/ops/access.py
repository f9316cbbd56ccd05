"""Who may see the internals: ``/metrics`` and the details of ``/readyz``.

A bearer token (``PNEUMO_METRICS_TOKEN`` or ``_FILE``) opens both; a logged-in staff member sees ``/readyz``
details; ``/metrics`` also answers callers from ``PNEUMO_METRICS_ALLOWED_IPS`` (addresses or networks, by default
only this machine). The address is the TCP peer (``REMOTE_ADDR``), never a forwarded header a client can forge;
behind nginx that peer is nginx, which is why deploy/nginx.conf does not pass ``/metrics`` on at all.
"""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest


def has_metrics_token(request: HttpRequest) -> bool:
    expected: str = settings.PNEUMO_METRICS_TOKEN
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), expected.encode())


def from_allowed_address(request: HttpRequest) -> bool:
    try:
        peer = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    networks: list[str] = settings.PNEUMO_METRICS_ALLOWED_IPS
    return any(peer in ipaddress.ip_network(network, strict=False) for network in networks)


def may_read_metrics(request: HttpRequest) -> bool:
    return has_metrics_token(request) or from_allowed_address(request)


def may_see_internals(request: HttpRequest) -> bool:
    """Hosts, ports and error texts of the readiness checks: staff or the metrics token only."""
    user = getattr(request, "user", None)
    return has_metrics_token(request) or bool(user is not None and user.is_authenticated and user.is_staff)
