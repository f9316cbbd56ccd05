"""What the API views share: the documented error answers, and a study the caller may see (or a 404)."""

from __future__ import annotations

import uuid

from drf_spectacular.utils import OpenApiResponse
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.views import APIView

from diagnosis.api.serializers import ErrorSerializer
from diagnosis.models import Study
from diagnosis.selectors.studies import study_get_visible_to


def error_response(description: str) -> OpenApiResponse:
    """An error answer for the OpenAPI schema: ``{"detail": ...}`` with what it means here."""
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = error_response("No or invalid credentials (token or session).")
FORBIDDEN = error_response("The account's role may not do this.")
NOT_FOUND = error_response("No such study, or not one this user may see (the two are not told apart).")


def visible_study(view: APIView, request: Request, study_id: uuid.UUID) -> Study:
    """The study if the caller may see it; otherwise 404, exactly as for a study that does not exist."""
    try:
        study = study_get_visible_to(user=request.user, study_id=study_id)
    except Study.DoesNotExist:
        raise NotFound("Study not found.") from None
    view.check_object_permissions(request, study)
    return study
