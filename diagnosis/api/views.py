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

from diagnosis.api.files import FirstRendererNegotiation, png_response
from diagnosis.api.permissions import HasClinicalRole, IsRadiologist, request_user
from diagnosis.api.serializers import (
    ErrorSerializer,
    ReviewSerializer,
    StudySerializer,
    study_detail_url,
    validated_input,
)
from diagnosis.exceptions import StudyStateError, UploadTooLargeError
from diagnosis.interop.fhir import diagnostic_report
from diagnosis.models import ModelVersion, Prediction, Review, Study
from diagnosis.selectors.fhir import study_fhir_report_input
from diagnosis.selectors.model_versions import model_version_list
from diagnosis.selectors.studies import (
    study_get_visible_to,
    study_list_visible_to,
    study_primary_prediction,
)
from diagnosis.services.access_audit import study_fhir_record_view, study_list_record_view
from diagnosis.services.reviews import review_create
from diagnosis.services.studies import study_create_from_upload, study_record_view
from diagnosis.services.upload_throttle import UploadRateThrottle

logger = logging.getLogger(__name__)

# Room for the multipart boundaries, part headers and the two identifier fields around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024


def _error(description: str) -> OpenApiResponse:
    return OpenApiResponse(ErrorSerializer, description=description)


UNAUTHENTICATED = _error("No or invalid credentials (token or session).")
FORBIDDEN = _error("The account's role may not do this.")
NOT_FOUND = _error("No such study, or not one this user may see (the two are not told apart).")


class StudyPagination(PageNumberPagination):
    """``?page=N``; integrators polling many studies may ask for up to 200 per page with ``?page_size=``."""

    page_size_query_param = "page_size"
    max_page_size = 200


def _visible_study(view: APIView, request: Request, study_id: uuid.UUID) -> Study:
    try:
        study = study_get_visible_to(user=request.user, study_id=study_id)
    except Study.DoesNotExist:
        raise NotFound("Study not found.") from None
    view.check_object_permissions(request, study)
    return study


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
            400: _error("Invalid filter value."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: _error("No such page (`page` past the last one, or not a positive number)."),
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
            400: _error("Missing file, corrupt or unusable image (e.g. truncated, DICOM without pixel data)."),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            413: _error("File over the size limit, or image dimensions over the pixel limit."),
            415: _error("Not a DICOM, PNG or JPEG file."),
            429: _error("Too many uploads; retry after the `Retry-After` header's seconds."),
            503: _error(
                "No model version is serving, or the database or storage is unavailable for now "
                "(the latter two with `Retry-After`)."
            ),
            507: _error("The server's storage is full; nothing was stored. Retry after `Retry-After` seconds."),
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
        study = _visible_study(self, request, id)
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
    404: _error("No such study (or not visible), or this image is not available yet."),
}


class _StudyPngApi(APIView):
    # Shared by the three PNG endpoints: JSON errors whatever the ``Accept`` header, PNG bytes on success.
    permission_classes = [HasClinicalRole]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    def _serve(self, request: Request, study_id: uuid.UUID, *, what: str) -> FileResponse:
        study = _visible_study(self, request, study_id)
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


class StudyReviewCreateApi(APIView):
    permission_classes = [IsRadiologist]

    @extend_schema_serializer(component_name="ReviewCreate")
    class InputSerializer(serializers.Serializer[Any]):
        finding = serializers.ChoiceField(choices=Review.Finding.choices)
        comment = serializers.CharField(
            required=False,
            allow_blank=True,
            default="",
            max_length=5000,
            help_text="The reason: required when the finding differs from the AI's label (an override) and when "
            "amending.",
        )
        amend = serializers.BooleanField(
            required=False,
            default=False,
            help_text="Set to true to amend the study's standing review (a reason is required). Without it, a "
            "study that already has a review is refused with 409: a review is never replaced silently.",
        )

    @extend_schema(
        operation_id="studies_review_create",
        tags=["studies"],
        description="Records the radiologist's finding: it confirms or overrides the model's. A study has one "
        "standing review (the latest); changing it is an explicit amendment (`amend: true` with a reason in "
        "`comment`), audited as `study.review_amended`, and every earlier review is kept. An override (a finding "
        "other than the AI's label) needs a reason. `OTHER_ABNORMALITY` and `NON_DIAGNOSTIC` make no pneumonia "
        "call: their `agrees_with_model` is null and live metrics exclude (and count) them. Audited.",
        summary="Review a completed study, or amend its review (radiologists only)",
        request=InputSerializer,
        responses={
            201: ReviewSerializer,
            400: _error("Invalid finding or comment, or no reason given for an override or an amendment."),
            401: UNAUTHENTICATED,
            403: _error("Only radiologists review studies."),
            404: NOT_FOUND,
            409: _error(
                "The study is not completed yet, it already has a review and `amend` was not set, or `amend` was set "
                "and there is no review to amend."
            ),
        },
    )
    def post(self, request: Request, id: uuid.UUID) -> Response:
        study = _visible_study(self, request, id)
        data = validated_input(self.InputSerializer, request.data)
        review = review_create(
            study=study,
            reviewer=request_user(request),
            finding=data["finding"],
            comment=data["comment"],
            amend=data["amend"],
            request=request,
        )
        return Response(ReviewSerializer(review).data, status=201)


FHIR_MEDIA_TYPE = "application/fhir+json"


class StudyFhirReportApi(APIView):
    # Read like the study itself (integrators: their own studies; radiologists: all). JSON errors, FHIR on success.
    permission_classes = [HasClinicalRole]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = FirstRendererNegotiation

    @extend_schema(
        operation_id="studies_fhir_report",
        tags=["studies"],
        summary="The study's result as a FHIR R4B DiagnosticReport (audited)",
        description="A FHIR R4B (R4-compatible) `DiagnosticReport` with its `Observation`s and the AI `Device` as "
        "contained resources. `status` is `preliminary` while only the AI has read the image, `final` once a "
        "radiologist reviewed it (the conclusion, `conclusionCode` and `resultsInterpreter` are then the "
        "radiologist's), and `amended` when a later review changed the finding. Codes: LOINC 18748-4, category RAD, "
        "SNOMED CT 233604007 (Pneumonia). `imagingStudy` references the ImagingStudy by Study Instance UID "
        "(`urn:dicom:uid`); an upload without one is referenced by PneumoWeb's study id (`urn:ietf:rfc:3986`). "
        "See docs/DICOM_CONFORMANCE.md.",
        responses={
            (200, FHIR_MEDIA_TYPE): OpenApiResponse(
                OpenApiTypes.OBJECT, description="A FHIR R4B DiagnosticReport resource (`application/fhir+json`)."
            ),
            401: UNAUTHENTICATED,
            403: FORBIDDEN,
            404: NOT_FOUND,
            409: _error("The study is not completed (queued, processing or failed): there is no report yet."),
        },
    )
    def get(self, request: Request, id: uuid.UUID) -> Response:
        study = _visible_study(self, request, id)
        if study.status != Study.Status.COMPLETED:
            raise StudyStateError(
                f"The study is {study.status}: its FHIR report exists once screening has completed.",
                extra={"status": study.status},
            )
        report = diagnostic_report(study_fhir_report_input(study))
        study_fhir_record_view(
            study_id=str(study.id), user=request_user(request), report_status=report["status"], request=request
        )
        return Response(report, content_type=FHIR_MEDIA_TYPE)


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
