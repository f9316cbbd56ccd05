"""One exception handler for the API: domain errors become 4xx JSON with a readable ``detail``.

Errors that pass (database unreachable, storage full) carry ``Retry-After``; the database's own message (host,
port, driver text) never reaches the client.
"""

from __future__ import annotations

import logging
from typing import Any

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
