"""REST API v1, what is recorded about a study: the radiologist's review (and its amendments), and the result as a
FHIR R4B DiagnosticReport. Thin views, like :mod:`diagnosis.api.views`."""

from __future__ import annotations

import uuid
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from diagnosis.api.common import FORBIDDEN, NOT_FOUND, UNAUTHENTICATED, error_response, visible_study
from diagnosis.api.files import FirstRendererNegotiation
from diagnosis.api.permissions import HasClinicalRole, IsRadiologist, request_user
from diagnosis.api.serializers import ReviewSerializer, validated_input
from diagnosis.exceptions import StudyStateError
from diagnosis.interop.fhir import diagnostic_report
from diagnosis.models import Review, Study
from diagnosis.selectors.fhir import study_fhir_report_input
from diagnosis.services.access_audit import study_fhir_record_view
from diagnosis.services.reviews import review_create


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
            400: error_response("Invalid finding or comment, or no reason given for an override or an amendment."),
            401: UNAUTHENTICATED,
            403: error_response("Only radiologists review studies."),
            404: NOT_FOUND,
            409: error_response(
                "The study is not completed yet, it already has a review and `amend` was not set, or `amend` was set "
                "and there is no review to amend."
            ),
        },
    )
    def post(self, request: Request, id: uuid.UUID) -> Response:
        study = visible_study(self, request, id)
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
            409: error_response("The study is not completed (queued, processing or failed): there is no report yet."),
        },
    )
    def get(self, request: Request, id: uuid.UUID) -> Response:
        study = visible_study(self, request, id)
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
