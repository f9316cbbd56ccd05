"""REST API v1: thin views that parse input, call one selector or service, and render output.

Authentication: a token (``Authorization: Token <key>``) for integrators, the session for the dashboard.
Visibility lives in :mod:`diagnosis.selectors` (integrators see only the studies they uploaded; a study that is
not the user's to see answers 404 exactly like a missing one). Domain errors become ``{"detail": ...}`` with their
status code in :mod:`diagnosis.api.exceptions`.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.conf import settings
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
)
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from diagnosis.api.common import FORBIDDEN, NOT_FOUND, UNAUTHENTICATED, error_response, visible_study
from diagnosis.api.files import FirstRendererNegotiation, png_response
from diagnosis.api.permissions import HasClinicalRole, request_user
from diagnosis.api.serializers import (
    StudySerializer,
    study_detail_url,
    validated_input,
)
from diagnosis.exceptions import UploadTooLargeError
from diagnosis.models import ModelVersion, Prediction, Study
from diagnosis.selectors.model_versions import model_version_list
from diagnosis.selectors.studies import (
    study_list_visible_to,
    study_primary_prediction,
)
from diagnosis.services.access_audit import study_list_record_view
from diagnosis.services.studies import study_create_from_upload, study_record_view
from diagnosis.services.upload_throttle import UploadRateThrottle

logger = logging.getLogger(__name__)

# Room for the multipart boundaries, part headers and the two identifier fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


class StudyPagination(PageNumberPagination):
    """``?page=N``; integrators polling many studies may ask for up to 200 per page with ``?page_size=``."""

    page_size_query_param = "page_size"
    max_page_size = 200


class StudyListCreateApi(APIView):
    # ``/studies/``: GET lists the worklist, POST submits a study. One URL, so one view class (DRF routes by
    # path); each method still calls exactly one selector or service.

    permission_classes = [HasClinicalRole]
    throttle_classes = [UploadRateThrottle]  # POST only; see UploadRateThrottle.
    parser_classes = [MultiPartParser, FormParser]
    pagination_class = StudyPagination

    @extend_schema_serializer(component_name="StudyListFilter")
    class FilterSerializer(serializers.Serializer[Any]):
        status = serializers.ChoiceField(choices=Study.Status.choices, required=False)
        # DRF's metaclass moves declared fields out of the class body; the stubs see a clash with Field.label.
        label = serializers.ChoiceField(  # type: ignore[assignment]
            choices=Prediction.Label.choices, required=False, help_text="The primary prediction's label."
        )

    @extend_schema_serializer(component_name="StudyUpload")
    class InputSerializer(serializers.Serializer[Any]):
        # Emptiness, size and format are the service's to judge, so the dashboard and the API refuse alike.
        file = serializers.FileField(
            allow_empty_file=True,
            use_url=False,
            help_text="A chest radiograph: DICOM, PNG or JPEG (recognised by content, not by file name).",
        )
        patient_id = serializers.CharField(required=False, allow_blank=True, default="", help_text="Max 64.")
        accession_number = serializers.CharField(required=False, allow_blank=True, default="", help_text="Max 64.")

    @extend_schema_serializer(component_name="StudyQueued")
    class OutputSerializer(serializers.Serializer[Study]):
        id = serializers.UUIDField()
        status = serializers.ChoiceField(choices=Study.Status.choices)
        url = serializers.SerializerMethodField()
        duplicate = serializers.SerializerMethodField()

        @extend_schema_field(
            serializers.BooleanField(
                help_text="True when this file was already received from this account (same patient and accession) "
                "a short while ago: this is that study, no new one was created (answered with 200, not 202)."
            )
        )
        def get_duplicate(self, study: Study) -> bool:
            return bool(self.context.get("duplicate", False))

        @extend_schema_field(serializers.URLField(help_text="Poll this study's detail endpoint for the result."))
        def get_url(self, study: Study) -> str:
            return study_detail_url(study, self.context.get("request"))

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        # Refuse an announced oversized body before anything reads it: authentication (the session's CSRF check)
        # would otherwise spool the whole upload to disk first. The service still checks the file's real size.
        if request.method == "POST":
            limit = settings.PNEUMO_MAX_UPLOAD_BYTES
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit + MULTIPART_OVERHEAD_BYTES:
                raise UploadTooLargeError(
                    f"The upload is {length / 1e6:.1f} MB; the limit is {limit / 1e6:.0f} MB.",
                    extra={"size_bytes": length, "limit_bytes": limit},
                )
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="studies_list",
        tags=["studies"],
        description="Integrators see the studies they submitted; radiologists see all. Shadow model "
        "predictions are never shown. Each page served is audited (who saw which study ids).",
        summary="List studies (worklist order: priority, then oldest first)",
        parameters=[FilterSerializer],
        responses={
            200: StudySerializer(many=True),
            400: error_response("Invalid filter value."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: error_response("No such page (`page` past the last one, or not a positive number)."),
        },
    )
    def get(self, request: Request) -> Response:
        filters = validated_input(self.FilterSerializer, request.query_params)
        studies = study_list_visible_to(user=request.user, status=filters.get("status"), label=filters.get("label"))
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(studies, request, view=self) or []
        # Listing shows patient data: who saw which studies is audited, one event per page.
        study_list_record_view(
            user=request_user(request),
            study_ids=[study.id for study in page],
            request=request,
            where="api.studies",
            page=paginator.page.number if paginator.page is not None else None,
            total=paginator.page.paginator.count if paginator.page is not None else None,
        )
        return paginator.get_paginated_response(StudySerializer(page, many=True, context={"request": request}).data)

    @extend_schema(
        operation_id="studies_create",
        tags=["studies"],
        summary="Submit a chest radiograph for screening",
        description="Validates the file without decoding it, stores it and queues inference. Poll `url` until "
        "`status` is `completed` or `failed`. A refused file is not stored. Once the study is stored the upload "
        "has succeeded, even while the queue (Redis) is down: it is sent to a worker as soon as the queue is back. "
        "Sending the same file again shortly afterwards returns the same study (200, `duplicate: true`).",
        request={"multipart/form-data": InputSerializer},
        parameters=[
            OpenApiParameter(
                "Location",
                OpenApiTypes.URI,
                OpenApiParameter.HEADER,
                response=[200, 202],
                description="The study's detail endpoint.",
            ),
            OpenApiParameter(
                "Retry-After",
                OpenApiTypes.INT,
                OpenApiParameter.HEADER,
                response=[429, 503, 507],
                description="Seconds to wait before the next upload.",
            ),
        ],
        responses={
            202: OutputSerializer,
            200: OpenApiResponse(
                OutputSerializer,
                description="The same file was received from this account within the last minutes (a retry): the "
                "existing study, with `duplicate: true`. Nothing new was stored or queued.",
            ),
            400: error_response("Missing file, corrupt or unusable image (e.g. truncated, DICOM without pixel data)."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            413: error_response("File over the size limit, or image dimensions over the pixel limit."),
            415: error_response("Not a DICOM, PNG or JPEG file."),
            429: error_response("Too many uploads; retry after the `Retry-After` header's seconds."),
            503: error_response(
                "No model version is serving, or the database or storage is unavailable for now "
                "(the latter two with `Retry-After`)."
            ),
            507: error_response("The server's storage is full; nothing was stored. Retry after `Retry-After` seconds."),
        },
    )
    def post(self, request: Request) -> Response:
        data = validated_input(self.InputSerializer, request.data)
        result = study_create_from_upload(
            upload=data["file"],
            uploaded_by=request_user(request),
            source=Study.Source.API,
            patient_id=data["patient_id"],
            accession_number=data["accession_number"],
            request=request,
        )
        context = {"request": request, "duplicate": result.duplicate}
        body = self.OutputSerializer(result.study, context=context).data
        return Response(body, status=200 if result.duplicate else 202, headers={"Location": body["url"]})


class StudyDetailApi(APIView):
    permission_classes = [HasClinicalRole]

    @extend_schema(
        operation_id="studies_retrieve",
        tags=["studies"],
        summary="A study: status, primary prediction, latest review and image links (audited)",
        responses={200: StudySerializer, 401: UNAUTHENTICATED, 403: FORBIDDEN, 404: NOT_FOUND},
    )
    def get(self, request: Request, id: uuid.UUID) -> Response:
        study = visible_study(self, request, id)
        study_record_view(study=study, user=request_user(request), request=request, what="study")
        return Response(StudySerializer(study, context={"request": request}).data)


PNG_DESCRIPTION = (
    "PNG bytes (`image/png`, `Cache-Control: private, no-store`), rendered by PneumoWeb's worker; 404 with a "
    "`detail` until it is available. Every successful fetch is audited."
)
_PNG_RESPONSES: dict[Any, Any] = {
    (200, "image/png"): OpenApiResponse(OpenApiTypes.BINARY, description="PNG rendered by PneumoWeb."),
    401: UNAUTHENTICATED,
    403: FORBIDDEN,
    404: error_response("No such study (or not visible), or this image is not available yet."),
}


class _StudyPngApi(APIView):
    # Shared by the three PNG endpoints: JSON errors whatever the ``Accept`` header, PNG bytes on success.
    permission_classes = [HasClinicalRole]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    def _serve(self, request: Request, study_id: uuid.UUID, *, what: str) -> FileResponse:
        study = visible_study(self, request, study_id)
        stored = self._stored_file(study)
        if not stored:
            raise NotFound(f"The {what} of this study is not available (the study is {study.status}).")
        try:
            response = png_response(stored, filename=f"{study.id}-{what}.png")
        except FileNotFoundError:
            logger.exception("Stored %s of study %s is missing: %s", what, study.id, stored.name)
            raise NotFound(f"The {what} of this study is missing from storage.") from None
        try:
            # Audited only once the file is known to exist: a failed request showed nothing.
            study_record_view(study=study, user=request_user(request), request=request, what=what)
        except Exception:
            response.close()
            raise
        return response

    def _stored_file(self, study: Study) -> FieldFile | None:
        raise NotImplementedError


class StudyImageApi(_StudyPngApi):
    @extend_schema(
        operation_id="studies_image",
        tags=["studies"],
        summary="The radiograph as a display PNG (audited)",
        description=PNG_DESCRIPTION,
        responses=_PNG_RESPONSES,
    )
    def get(self, request: Request, id: uuid.UUID) -> FileResponse:
        return self._serve(request, id, what="image")

    def _stored_file(self, study: Study) -> FieldFile | None:
        # The PNG the worker rendered, never the original upload (which may be DICOM).
        return study.display_image or None


class StudyHeatmapApi(_StudyPngApi):
    @extend_schema(
        operation_id="studies_heatmap",
        tags=["studies"],
        summary="Grad-CAM heatmap of the primary prediction (audited)",
        description=PNG_DESCRIPTION,
        responses=_PNG_RESPONSES,
    )
    def get(self, request: Request, id: uuid.UUID) -> FileResponse:
        return self._serve(request, id, what="heatmap")

    def _stored_file(self, study: Study) -> FieldFile | None:
        prediction = study_primary_prediction(study)
        return prediction.heatmap if prediction is not None and prediction.heatmap else None


class StudyOverlayApi(_StudyPngApi):
    @extend_schema(
        operation_id="studies_overlay",
        tags=["studies"],
        summary="Heatmap blended over the radiograph (audited)",
        description=PNG_DESCRIPTION,
        responses=_PNG_RESPONSES,
    )
    def get(self, request: Request, id: uuid.UUID) -> FileResponse:
        return self._serve(request, id, what="overlay")

    def _stored_file(self, study: Study) -> FieldFile | None:
        prediction = study_primary_prediction(study)
        return prediction.overlay if prediction is not None and prediction.overlay else None


class ModelVersionListApi(APIView):
    permission_classes = [HasClinicalRole]

    @extend_schema_serializer(component_name="ModelVersion")
    class OutputSerializer(serializers.Serializer[Any]):  # Any: given a list (many=True)
        version = serializers.CharField()
        status = serializers.ChoiceField(choices=ModelVersion.Status.choices)
        traffic_share = serializers.IntegerField(help_text="Percent of new studies this version serves.")
        threshold = serializers.FloatField()
        threshold_method = serializers.JSONField(help_text="How the threshold was chosen, on which data.")
        validated = serializers.BooleanField(help_text="False for untrained or unvalidated models.")
        image_size = serializers.IntegerField()
        metrics = serializers.JSONField(help_text="Validation metrics with 95% confidence intervals.")
        population = serializers.CharField(help_text="Intended use: the population the model was trained on.")
        created_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="models_list",
        tags=["models"],
        summary="Model versions, newest first",
        responses={200: OutputSerializer(many=True), 401: UNAUTHENTICATED, 403: FORBIDDEN},
    )
    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(model_version_list(), many=True).data)


@csrf_exempt  # it changes nothing, and a POST to a wrong URL must get the JSON 404, not a CSRF page
def unmatched_api_url(request: HttpRequest, *args: object, **kwargs: object) -> JsonResponse:
    """An /api/ URL that no route matches: JSON 404, as every API error is (not part of the schema: no operation)."""
    return JsonResponse({"detail": "Not found."}, status=404)
