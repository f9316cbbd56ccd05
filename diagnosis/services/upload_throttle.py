"""Upload throttling: a per-user rate on new studies (scope ``uploads`` in ``DEFAULT_THROTTLE_RATES``).

One counter per user, shared by the API (``UploadRateThrottle`` as a DRF throttle class) and the dashboard
(``upload_throttle_wait``, charged once per file), so neither path is a way around the other's limit.

DRF throttling is not a security boundary (its counters are not atomic, and they live in Django's cache, which is
per process unless ``CACHES`` points at a shared server); it keeps one misbehaving integrator from flooding the
inference queue. Brute-force login protection is django-axes' job.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.http import HttpRequest
from redis.exceptions import RedisError
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)


class UploadRateThrottle(SimpleRateThrottle):
    """Throttle only the writes of a view (listing studies is not an upload)."""

    scope = "uploads"

    def get_rate(self) -> str | None:
        # DRF's SimpleRateThrottle reads the rates once, at import (class attribute THROTTLE_RATES); reading them
        # per request keeps `override_settings(REST_FRAMEWORK=...)` and a reloaded configuration effective.
        # The stubs type these rates as numbers; DRF's rates are strings such as "120/min".
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)  # type: ignore[return-value]

    def allow_request(self, request: Request, view: Any) -> bool:
        if request.method in SAFE_METHODS:
            return True
        try:
            return super().allow_request(request, view)
        except (RedisError, ConnectionError, TimeoutError):
            # Fail open: the throttle guards the queue against a flood, it is no security boundary, and the upload
            # itself needs only the database. Refusing uploads while the cache is down would turn a Redis outage
            # into an outage of clinical intake.
            logger.warning("upload throttle skipped: its cache (Redis) is unavailable", exc_info=True)
            return True

    def get_cache_key(self, request: Request, view: Any) -> str:
        if request.user and request.user.is_authenticated:
            ident = f"user:{request.user.pk}"
        else:
            ident = f"ip:{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


def upload_throttle_wait(request: HttpRequest) -> int | None:
    """Charge one upload to the caller's counter. None when it is allowed; otherwise the seconds to wait."""
    throttle = UploadRateThrottle()
    # DRF's throttle reads only method, user and REMOTE_ADDR: a Django request serves as well as a DRF one.
    if throttle.allow_request(request, None):  # type: ignore[arg-type]
        return None
    return max(1, math.ceil(throttle.wait() or 1))
