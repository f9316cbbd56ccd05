"""Who may see what: every read of studies for a user goes through here, so visibility rules live in one place."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import Prefetch, QuerySet

from diagnosis.models import DicomInstance, Prediction, Review, Study

RADIOLOGIST_GROUP = "radiologist"
INTEGRATOR_GROUP = "integrator"

UserLike = User | AnonymousUser


def _in_group(user: Any, name: str) -> bool:
    if not user.is_authenticated:
        return False
    cache = getattr(user, "_pneumo_groups", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._pneumo_groups = cache
    return name in cache


def user_is_radiologist(user: UserLike) -> bool:
    """Radiologists (and staff) read every study and review them."""
    return bool(user.is_authenticated and (getattr(user, "is_staff", False) or _in_group(user, RADIOLOGIST_GROUP)))


def user_is_integrator(user: UserLike) -> bool:
    return _in_group(user, INTEGRATOR_GROUP)


def user_can_upload(user: UserLike) -> bool:
    return user_is_radiologist(user) or user_is_integrator(user)


def _with_primary_prediction(queryset: QuerySet[Study]) -> QuerySet[Study]:
    primary = Prediction.objects.filter(is_shadow=False).select_related("model_version")
    reviews = Review.objects.select_related("reviewer").order_by("-created_at")
    # The PACS origin (one joined row) and the images of the same DICOM study (one query per page, and none at all
    # for a page without PACS studies): the worklist's "image k of N" costs no query per row.
    siblings = DicomInstance.objects.only("id", "dicom_study_id", "received_at", "sop_instance_uid").order_by(
        "received_at", "sop_instance_uid"
    )
    return queryset.select_related(
        "model_version", "uploaded_by", "dicom_instance__dicom_study__node"
    ).prefetch_related(
        Prefetch("predictions", queryset=primary, to_attr="primary_predictions"),
        Prefetch("reviews", queryset=reviews, to_attr="reviews_newest_first"),
        Prefetch("dicom_instance__dicom_study__instances", queryset=siblings, to_attr="instances_in_order"),
    )


def study_list_visible_to(*, user: UserLike, status: str | None = None, label: str | None = None) -> QuerySet[Study]:
    """Studies this user may see, in worklist order: highest priority first, then longest waiting."""
    if user_is_radiologist(user):
        queryset = Study.objects.all()
    elif user.is_authenticated and user_is_integrator(user):
        queryset = Study.objects.filter(uploaded_by=user)
    else:
        queryset = Study.objects.none()
    if status:
        queryset = queryset.filter(status=status)
    if label:
        queryset = queryset.filter(predictions__is_shadow=False, predictions__label=label)
    return _with_primary_prediction(queryset).order_by("-priority", "created_at")


def study_get_visible_to(*, user: UserLike, study_id: uuid.UUID | str) -> Study:
    """The study, or ``Study.DoesNotExist`` when it is missing or not this user's to see (both answer 404)."""
    try:
        key = study_id if isinstance(study_id, uuid.UUID) else uuid.UUID(str(study_id))
    except ValueError:
        raise Study.DoesNotExist from None
    return study_list_visible_to(user=user).get(pk=key)


def study_primary_prediction(study: Study) -> Prediction | None:
    cached = getattr(study, "primary_predictions", None)
    if cached is not None:
        return cached[0] if cached else None
    return study.predictions.filter(is_shadow=False).select_related("model_version").first()


def study_latest_review(study: Study) -> Review | None:
    cached = getattr(study, "reviews_newest_first", None)
    if cached is not None:
        return cached[0] if cached else None
    return study.reviews.select_related("reviewer").order_by("-created_at").first()


def study_find(study_id: str) -> Study | None:
    """A study by id for staff pages (admin), or None for a missing study or a malformed id."""
    try:
        key = uuid.UUID(str(study_id))
    except ValueError:
        return None
    return Study.objects.filter(pk=key).first()


# --- Where a study came from (upload, API, PACS) -----------------------------------------------------------------

SOURCE_SHORT_LABELS: dict[str, str] = {
    Study.Source.DASHBOARD.value: "Upload",
    Study.Source.API.value: "API",
    Study.Source.DICOM.value: "PACS C-STORE",
    Study.Source.DICOMWEB.value: "PACS STOW-RS",
}


@dataclass(frozen=True)
class StudyOrigin:
    """How a study arrived, for the worklist, the study page and the API.

    PACS studies are one image each (one result per image): ``image_index`` of ``image_count`` places the image
    among the instances received for the same Study Instance UID. Both are None for uploads.
    """

    source: str
    source_label: str
    from_pacs: bool
    calling_ae_title: str = ""
    node_name: str = ""
    study_instance_uid: str = ""
    study_date: dt.date | None = None
    patient_name: str = ""
    image_index: int | None = None
    image_count: int | None = None


def _dicom_date(value: Any) -> dt.date | None:
    try:
        return dt.datetime.strptime(str(value or "").strip(), "%Y%m%d").date()  # noqa: DTZ007 - a date, no time
    except ValueError:
        return None


def person_name_display(value: str) -> str:
    """A DICOM person name (``DOE^JANE^M``, alphabetic group only) as ``DOE, JANE M``."""
    family, _, rest = value.split("=")[0].partition("^")
    given = " ".join(part for part in rest.split("^") if part.strip())
    return f"{family.strip()}, {given}" if family.strip() and given else (family.strip() or given)


def study_dicom_instance(study: Study) -> DicomInstance | None:
    """The received DICOM instance this study screens (PACS studies only)."""
    try:
        return study.dicom_instance
    except ObjectDoesNotExist:
        return None


def study_origin(study: Study) -> StudyOrigin:
    """Source, calling AE title, Study Instance UID, study date, patient name and "image k of N" of a study."""
    metadata = study.dicom_metadata or {}
    source = str(study.source)
    source_label = SOURCE_SHORT_LABELS.get(source, study.get_source_display())
    instance = study_dicom_instance(study)
    if instance is None:
        # An upload (a DICOM file keeps its UIDs in its metadata), or a PACS study whose instance row is gone.
        return StudyOrigin(
            source=source,
            source_label=source_label,
            from_pacs=source in (Study.Source.DICOM, Study.Source.DICOMWEB),
            study_instance_uid=str(metadata.get("study_instance_uid") or ""),
            study_date=_dicom_date(metadata.get("study_date")),
            patient_name=person_name_display(str(metadata.get("patient_name") or "")),
        )
    dicom_study = instance.dicom_study
    siblings: list[DicomInstance] | None = getattr(dicom_study, "instances_in_order", None)
    if siblings is None:
        siblings = list(dicom_study.instances.order_by("received_at", "sop_instance_uid").only("id"))
    position = next((number for number, other in enumerate(siblings, 1) if other.id == instance.id), None)
    return StudyOrigin(
        source=source,
        source_label=source_label,
        from_pacs=True,
        calling_ae_title=instance.calling_ae_title or dicom_study.calling_ae_title,
        node_name=dicom_study.node.name if dicom_study.node is not None else "",
        study_instance_uid=dicom_study.study_instance_uid,
        study_date=dicom_study.study_date or _dicom_date(metadata.get("study_date")),
        patient_name=person_name_display(dicom_study.patient_name or str(metadata.get("patient_name") or "")),
        image_index=position,
        image_count=len(siblings),
    )
