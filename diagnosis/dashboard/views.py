"""The radiologist dashboard: thin server-rendered views over selectors and services.

Every page is for radiologists and staff only (``selectors.user_is_radiologist``); anyone else who is logged in
gets a 403 page. JSON endpoints used by the pages' small scripts answer 401/403 as JSON instead of redirecting, so
a script never mistakes the login page for data.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from diagnosis.dashboard.forms import ReviewForm, UploadFileForm, UploadForm, patient_id_error
from diagnosis.dashboard.review_panel import review_panel_context
from diagnosis.dashboard.viewer_context import viewer_context
from diagnosis.exceptions import ApplicationError, InvalidInputError
from diagnosis.models import Study
from diagnosis.selectors import studies as selectors
from diagnosis.selectors.pacs_results import study_result_sends
from diagnosis.selectors.study_header import study_header
from diagnosis.services.studies import StudyUpload, study_create_from_upload, study_record_view
from diagnosis.services.upload_throttle import upload_throttle_wait

WORKLIST_PAGE_SIZE = 50
WORKLIST_POLL_SECONDS = 5
STUDY_POLL_SECONDS = 3

View = Callable[..., HttpResponseBase]  # streamed files (FileResponse) are views' answers too
_Response = TypeVar("_Response", bound=HttpResponse)


def radiologist_required(view: View) -> View:
    """Login required (redirect to the login page); then radiologists and staff only (403 page)."""

    @login_required
    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not selectors.user_is_radiologist(request.user):
            return render(request, "diagnosis/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


def radiologist_required_json(view: View) -> View:
    """The same rule for endpoints called by scripts: 401/403 JSON rather than a redirect or an HTML page."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_authenticated:
            return JsonResponse({"detail": "Your session has ended. Reload the page and log in again."}, status=401)
        if not selectors.user_is_radiologist(request.user):
            return JsonResponse({"detail": "The dashboard is for radiologists."}, status=403)
        return view(request, *args, **kwargs)

    return wrapper


def request_user(request: HttpRequest) -> User:
    """The logged-in user of a view behind ``radiologist_required`` or ``radiologist_required_json``."""
    user = request.user
    if not user.is_authenticated:
        raise PermissionDenied  # never reached: both decorators answer anonymous requests first
    return user


# --- Worklist: diagnosis/dashboard/worklist.py (tabs, search, sort, thumbnails) -------------------------------


# --- Upload ------------------------------------------------------------------------------------------------------


def _rate_message(wait: int) -> str:
    return f"Too many uploads in a short time (the same limit as the API). Try again in {wait} s."


def _create_study(request: HttpRequest, upload: Any, patient_id: str, accession_number: str) -> StudyUpload:
    return study_create_from_upload(
        upload=upload,
        uploaded_by=request_user(request),
        source=Study.Source.DASHBOARD,
        patient_id=patient_id,
        accession_number=accession_number,
        request=request,
    )


def _with_retry_after(response: _Response, error: ApplicationError | None) -> _Response:
    # A refusal that passes (storage full) tells the client when to try again, as the API does.
    if error is not None and error.retry_after_seconds:
        response["Retry-After"] = str(error.retry_after_seconds)
    return response


def _upload_context(form: UploadForm) -> dict[str, Any]:
    return {"form": form, "require_patient_id": settings.PNEUMO_UPLOAD_REQUIRE_PATIENT_ID}


@require_http_methods(["GET", "POST"])
@radiologist_required
def upload(request: HttpRequest) -> HttpResponse:
    """The upload page. With scripts, files go one by one to ``upload_file``; without, one plain form POST."""
    if request.method == "GET":
        return render(request, "diagnosis/upload.html", _upload_context(UploadForm()))
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        return render(request, "diagnosis/upload.html", _upload_context(form), status=400)
    results: list[StudyUpload] = []
    refused: list[ApplicationError] = []
    throttled_wait: int | None = None
    for file in form.cleaned_data["file"]:
        # Every file is one study: each is charged to the uploader's counter, the one API uploads use.
        throttled_wait = throttled_wait or upload_throttle_wait(request)
        if throttled_wait is not None:
            form.add_error("file", f"{file.name}: {_rate_message(throttled_wait)}")
            continue
        if missing := patient_id_error(
            upload=file, patient_id=form.cleaned_data["patient_id"], required=settings.PNEUMO_UPLOAD_REQUIRE_PATIENT_ID
        ):
            refused.append(InvalidInputError(missing))
            form.add_error("file", f"{file.name}: {missing}")
            continue
        try:
            results.append(
                _create_study(request, file, form.cleaned_data["patient_id"], form.cleaned_data["accession_number"])
            )
        except ApplicationError as exc:
            refused.append(exc)
            form.add_error("file", f"{file.name}: {exc.message}")
    created = [result.study for result in results]
    if new := [result.study for result in results if not result.duplicate]:
        names = ", ".join(study.original_filename or "file" for study in new)
        messages.success(request, f"Received and queued for screening: {names}.")
    if again := [result.study for result in results if result.duplicate]:
        names = ", ".join(study.original_filename or "file" for study in again)
        messages.info(request, f"Already received a few minutes ago, not added twice: {names}.")
    if throttled_wait is not None and not created:
        response = render(request, "diagnosis/upload.html", _upload_context(form), status=429)
        response["Retry-After"] = str(throttled_wait)
        return response
    if refused or throttled_wait is not None:
        status = 200 if created else refused[0].status_code
        response = render(request, "diagnosis/upload.html", _upload_context(form), status=status)
        return _with_retry_after(response, None if created else refused[0])
    if len(created) == 1:
        return redirect("dashboard:study", study_id=created[0].id)
    return redirect("dashboard:worklist")


@require_POST
@radiologist_required_json
def upload_file(request: HttpRequest) -> JsonResponse:
    """One file per request (session auth + CSRF), so the page shows progress and a result for each file.

    Each file carries its own patient ID and accession number (PNG/JPEG; DICOM files use their header).
    """
    upload_ = request.FILES.get("file")
    if upload_ is None:
        return JsonResponse({"detail": "No file was sent (form field 'file')."}, status=400)
    fields = UploadFileForm(request.POST, request.FILES, require_patient_id=settings.PNEUMO_UPLOAD_REQUIRE_PATIENT_ID)
    if not fields.is_valid():
        detail = " ".join(str(error) for errors in fields.errors.values() for error in errors)
        return JsonResponse({"detail": detail, "filename": upload_.name, "fields": fields.errors}, status=400)
    wait = upload_throttle_wait(request)
    if wait is not None:
        throttled = JsonResponse({"detail": _rate_message(wait), "filename": upload_.name}, status=429)
        throttled["Retry-After"] = str(wait)
        return throttled
    try:
        result = _create_study(
            request, upload_, fields.cleaned_data["patient_id"], fields.cleaned_data["accession_number"]
        )
    except ApplicationError as exc:
        body: dict[str, Any] = {"detail": exc.message, "filename": upload_.name}
        if exc.extra:
            body["extra"] = exc.extra
        return _with_retry_after(JsonResponse(body, status=exc.status_code), exc)
    study = result.study
    return JsonResponse(
        {
            "id": str(study.id),
            "status": study.status,
            "filename": study.original_filename,
            "url": reverse("dashboard:study", kwargs={"study_id": study.id}),
            "duplicate": result.duplicate,
            "detail": "Already received a few minutes ago; this is that study."
            if result.duplicate
            else "Received and queued for screening.",
        },
        status=200 if result.duplicate else 201,
    )


# --- Study -------------------------------------------------------------------------------------------------------


def study_or_404(request: HttpRequest, study_id: uuid.UUID) -> Study:
    try:
        return selectors.study_get_visible_to(user=request.user, study_id=study_id)
    except Study.DoesNotExist:
        raise Http404("No such study.") from None


def render_study(
    request: HttpRequest, study: Study, *, form: ReviewForm | None = None, status: int = 200, amending: bool = False
) -> HttpResponse:
    # Every render shows patient data, so every render is audited.
    study_record_view(study=study, user=request_user(request), request=request, what="study")
    prediction = selectors.study_primary_prediction(study)
    model_version = prediction.model_version if prediction is not None else study.model_version
    api_base = f"/api/v1/studies/{study.id}"
    origin = selectors.study_origin(study)
    context = {
        "study": study,
        "origin": origin,
        "header": study_header(study=study, origin=origin, prediction=prediction, model_version=model_version),
        "prediction": prediction,
        "model_version": model_version,
        "unvalidated": not model_version.validated,
        # Alphabetical: jsonb does not keep the insertion order, and a stable order is easier to scan.
        "dicom_metadata": sorted((study.dicom_metadata or {}).items()),
        # The review panel (H4, issue 10): standing review, history, first-review or amend form.
        **review_panel_context(study=study, prediction=prediction, form=form, amending=amending),
        "can_review": study.status == Study.Status.COMPLETED,
        # The display PNG exists once a worker has rendered it; before that there is nothing to show.
        "image_url": f"{api_base}/image/" if study.display_image else "",
        "heatmap_url": f"{api_base}/heatmap/" if prediction is not None and prediction.heatmap else "",
        "overlay_url": f"{api_base}/overlay/" if prediction is not None and prediction.overlay else "",
        "in_progress": study.status in (Study.Status.QUEUED, Study.Status.PROCESSING),
        "poll_seconds": STUDY_POLL_SECONDS,
        "result_sends": study_result_sends(study),
        **viewer_context(request, study, prediction),
    }
    return render(request, "diagnosis/study.html", context, status=status)


@require_GET
@radiologist_required
def study_detail(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    # ?amend=1 opens the amend form (the "Amend review" link works without scripts too).
    return render_study(request, study_or_404(request, study_id), amending=request.GET.get("amend") == "1")


# The review POST (record, amend, save and next) is diagnosis.dashboard.review_views.study_review.


@require_GET
@radiologist_required_json
def study_status(request: HttpRequest, study_id: uuid.UUID) -> JsonResponse:
    """Polled by a queued/processing study's page, which reloads once the status changes."""
    study = study_or_404(request, study_id)
    return JsonResponse({"id": str(study.id), "status": study.status})


# --- Help --------------------------------------------------------------------------------------------------------


@require_GET
@radiologist_required
def help_page(request: HttpRequest) -> HttpResponse:
    """How studies get here (upload, API, PACS) and how a hospital connects its PACS, with this site's values."""
    context = {
        "dicom_ae_title": settings.PNEUMO_DICOM_AE_TITLE,
        "dicom_port": settings.PNEUMO_DICOM_PORT,
        "stability_seconds": settings.PNEUMO_DICOM_STABILITY_SECONDS,
        "dicom_host": request.get_host().split(":")[0],
        "stow_url": request.build_absolute_uri("/dicomweb/studies"),
    }
    return render(request, "diagnosis/help.html", context)
