"""Output serializers shared by several endpoints, and the helper that turns invalid input into a 400.

Endpoint-specific input and output serializers are nested in their view (``diagnosis/api/views.py``,
``diagnosis/api/study_reports.py``).
Serializers only shape data: they read through selectors and never write.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.reverse import reverse

from diagnosis.models import Prediction, Review, Study
from diagnosis.selectors.studies import StudyOrigin, study_latest_review, study_origin, study_primary_prediction


class ErrorSerializer(serializers.Serializer[Any]):
    """Every refusal: ``detail`` says why in a sentence; ``errors`` (per field) or ``extra`` may add specifics."""

    detail = serializers.CharField()
    # DRF's metaclass moves declared fields out of the class body; the stubs see a clash with Serializer.errors.
    errors = serializers.DictField(  # type: ignore[assignment]
        required=False, help_text="Per-field messages, for invalid input."
    )
    extra = serializers.DictField(required=False, help_text="Machine-readable specifics (e.g. size limits).")


class InvalidInput(APIException):
    status_code = 400
    default_detail = "Invalid input."
    default_code = "invalid"


def validated_input(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    """Validate ``data`` or raise a 400 whose ``detail`` names the first problem (same shape as domain errors)."""
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return dict(serializer.validated_data)
    field, messages = next(iter(serializer.errors.items()))
    first = messages[0] if isinstance(messages, list) and messages else messages
    detail = str(first) if field == "non_field_errors" else f"{field}: {first}"
    raise InvalidInput(detail={"detail": detail, "errors": serializer.errors})


class PredictionSerializer(serializers.Serializer[Prediction]):
    """The model's primary (never a shadow) prediction. Decision support only: it needs a radiologist's review."""

    probability = serializers.FloatField(help_text="Model output in [0, 1] (probability of pneumonia).")
    # As ErrorSerializer.errors: the stubs see a clash with Field.label that the metaclass removes at runtime.
    label = serializers.ChoiceField(  # type: ignore[assignment]
        choices=Prediction.Label.choices, help_text="`probability >= threshold`."
    )
    threshold = serializers.FloatField(help_text="The decision threshold of the version that made this prediction.")
    model_version = serializers.CharField(source="model_version.version")
    validated = serializers.BooleanField(
        source="model_version.validated",
        help_text="False when the model was never validated (e.g. the untrained demo model): do not rely on it.",
    )
    inference_ms = serializers.FloatField()


class ReviewSerializer(serializers.Serializer[Review]):
    finding = serializers.ChoiceField(choices=Review.Finding.choices)
    agrees_with_model = serializers.BooleanField(
        allow_null=True,
        help_text="Null when there was no model prediction to agree with, and for OTHER_ABNORMALITY and "
        "NON_DIAGNOSTIC (no pneumonia call).",
    )
    comment = serializers.CharField()
    reviewer = serializers.CharField(source="reviewer.get_username")
    created_at = serializers.DateTimeField()


def _absolute(name: str, study: Study, request: Request | None) -> str:
    return reverse(name, kwargs={"id": study.id}, request=request)


def study_detail_url(study: Study, request: Request | None) -> str:
    return _absolute("api:study-detail", study, request)


class StudySerializer(serializers.Serializer[Any]):  # Any: also given pages of studies (many=True)
    """A submitted radiograph, its processing status, the model's prediction and the radiologist's review."""

    # Built from the selectors' studies: the primary prediction comes prefetched (never a shadow one).

    id = serializers.UUIDField()
    url = serializers.SerializerMethodField()
    status = serializers.ChoiceField(choices=Study.Status.choices)
    error = serializers.CharField(help_text="Why processing failed, for a `failed` study; empty otherwise.")
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    patient_id = serializers.CharField()
    accession_number = serializers.CharField()
    format = serializers.ChoiceField(choices=Study.Format.choices)
    model_version = serializers.CharField(
        source="model_version.version", help_text="The model version assigned when the study was queued."
    )
    prediction = serializers.SerializerMethodField()
    review = serializers.SerializerMethodField()
    image_url = serializers.SerializerMethodField()
    heatmap_url = serializers.SerializerMethodField()
    overlay_url = serializers.SerializerMethodField()
    fhir_url = serializers.SerializerMethodField()
    # Where the study came from. PACS studies are one image each: `image_index` of `image_count` among the images
    # received for the same Study Instance UID, each with its own result.
    # As PredictionSerializer.label: the stubs see a clash with Field.source that the metaclass removes at runtime.
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=Study.Source.choices,
        help_text="`dashboard` (upload), `api`, `dicom` (PACS, DICOM C-STORE) or `dicomweb` (PACS, STOW-RS).",
    )
    calling_ae_title = serializers.SerializerMethodField()
    study_instance_uid = serializers.SerializerMethodField()
    study_date = serializers.SerializerMethodField()
    image_index = serializers.SerializerMethodField()
    image_count = serializers.SerializerMethodField()

    def _request(self) -> Request | None:
        return self.context.get("request")

    def _origin(self, study: Study) -> StudyOrigin:
        # Several fields read it; with many=True one child serializer serves every row, so key by study.
        cache: dict[Any, StudyOrigin] = self.__dict__.setdefault("_origins", {})
        if study.pk not in cache:
            cache[study.pk] = study_origin(study)
        return cache[study.pk]

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="The sending PACS's AE title; null unless from a PACS.")
    )
    def get_calling_ae_title(self, study: Study) -> str | None:
        origin = self._origin(study)
        return (origin.calling_ae_title or None) if origin.from_pacs else None

    @extend_schema_field(
        serializers.CharField(allow_null=True, help_text="DICOM Study Instance UID; null for PNG/JPEG uploads.")
    )
    def get_study_instance_uid(self, study: Study) -> str | None:
        return self._origin(study).study_instance_uid or None

    @extend_schema_field(serializers.DateField(allow_null=True, help_text="DICOM Study Date, when known."))
    def get_study_date(self, study: Study) -> str | None:
        study_date = self._origin(study).study_date
        return study_date.isoformat() if study_date is not None else None

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True, help_text="PACS studies: this image's place (1-based) among `image_count`."
        )
    )
    def get_image_index(self, study: Study) -> int | None:
        return self._origin(study).image_index

    @extend_schema_field(
        serializers.IntegerField(
            allow_null=True,
            help_text="PACS studies: the images received for this Study Instance UID (one result per image).",
        )
    )
    def get_image_count(self, study: Study) -> int | None:
        return self._origin(study).image_count

    @extend_schema_field(
        serializers.URLField(allow_null=True, help_text="FHIR R4B DiagnosticReport; null until completed.")
    )
    def get_fhir_url(self, study: Study) -> str | None:
        return _absolute("api:study-fhir", study, self._request()) if study.status == Study.Status.COMPLETED else None

    @extend_schema_field(serializers.URLField(help_text="This study's detail endpoint."))
    def get_url(self, study: Study) -> str:
        return study_detail_url(study, self._request())

    @extend_schema_field(PredictionSerializer(allow_null=True))
    def get_prediction(self, study: Study) -> dict[str, Any] | None:
        prediction = study_primary_prediction(study)
        return None if prediction is None else PredictionSerializer(prediction).data

    @extend_schema_field(ReviewSerializer(allow_null=True, help_text="The latest review; it stands."))
    def get_review(self, study: Study) -> dict[str, Any] | None:
        review = study_latest_review(study)
        return None if review is None else ReviewSerializer(review).data

    @extend_schema_field(serializers.URLField(allow_null=True, help_text="PNG; null until the worker rendered it."))
    def get_image_url(self, study: Study) -> str | None:
        return _absolute("api:study-image", study, self._request()) if study.display_image else None

    @extend_schema_field(serializers.URLField(allow_null=True, help_text="Grad-CAM heatmap PNG; null until ready."))
    def get_heatmap_url(self, study: Study) -> str | None:
        prediction = study_primary_prediction(study)
        if prediction is None or not prediction.heatmap:
            return None
        return _absolute("api:study-heatmap", study, self._request())

    @extend_schema_field(serializers.URLField(allow_null=True, help_text="Heatmap over the image; null until ready."))
    def get_overlay_url(self, study: Study) -> str | None:
        prediction = study_primary_prediction(study)
        if prediction is None or not prediction.overlay:
            return None
        return _absolute("api:study-overlay", study, self._request())
