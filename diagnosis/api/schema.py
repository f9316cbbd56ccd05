"""OpenAPI post-processing: the error answers every operation can give, documented once with the shared Error.

Each view documents its own refusals (400/403/404/409/415/429...). Some answers come from outside the view and
apply to every operation alike: no credentials (401), a body over the limit before anything reads it (413,
diagnosis.ops.body_limit) and an infrastructure outage (503 with ``Retry-After``).
"""

from __future__ import annotations

from typing import Any

ERROR_REF = {"$ref": "#/components/schemas/Error"}

_EVERY_OPERATION = {
    "401": "No or invalid credentials (token or session).",
    "503": "Temporarily unavailable (database, broker or storage); retry after the `Retry-After` header's seconds.",
}
_WITH_BODY = {
    "413": "Request body over the limit: 64 KB, or the upload limit for an authenticated upload.",
}


def _error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ERROR_REF}}}


def add_common_error_responses(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """drf-spectacular ``POSTPROCESSING_HOOKS`` entry (after the enum hook)."""
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            common = dict(_EVERY_OPERATION)
            if method in ("post", "put", "patch"):
                common.update(_WITH_BODY)
            for status, description in common.items():
                responses.setdefault(status, _error_response(description))
    return result
