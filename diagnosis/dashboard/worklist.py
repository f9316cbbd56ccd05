"""The worklist page, its polled rows and the rows' thumbnails (issue 10: a worklist that triages).

Tabs (scopes), search and sort travel in the query string, so the page, the poll (``worklist_rows`` with the same
``location.search``) and a bookmark all show the same list. Every row's facts come from prefetched rows: the query
count does not grow with the page.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.http import require_GET
from PIL import Image
from redis.exceptions import RedisError

from diagnosis.dashboard import views
from diagnosis.dashboard.forms import WorklistFilterForm
from diagnosis.dashboard.views import radiologist_required, request_user
from diagnosis.dashboard.views import radiologist_required_json as _json_only
from diagnosis.models import ModelVersion, Prediction, Review, Study
from diagnosis.selectors import studies as selectors
from diagnosis.selectors import worklist as triage
from diagnosis.services.access_audit import study_list_record_view

logger = logging.getLogger(__name__)

THUMBNAIL_SIZE = 96


@dataclass(frozen=True)
class WorklistRow:
    study: Study
    prediction: Prediction | None
    latest_review: Review | None
    first_review: Review | None
    origin: selectors.StudyOrigin
    waiting: triage.Waiting

    @property
    def model_version(self) -> ModelVersion:
        # The version that produced the result, or (still queued) the one assigned to produce it.
        return self.prediction.model_version if self.prediction is not None else self.study.model_version

    @property
    def unvalidated(self) -> bool:
        return not self.model_version.validated

    @property
    def urgent(self) -> bool:
        """AI-positive and not yet reviewed: the reader should open it first."""
        return (
            self.prediction is not None
            and self.prediction.label == Prediction.Label.PNEUMONIA
            and self.latest_review is None
        )

    @property
    def intended_use_warnings(self) -> list[dict[str, str]]:
        return list(self.prediction.intended_use_warnings or []) if self.prediction is not None else []

    @property
    def age(self) -> str:
        return triage.age_display(str((self.study.dicom_metadata or {}).get("patient_age") or ""))

    @property
    def sex(self) -> str:
        return triage.sex_display(str((self.study.dicom_metadata or {}).get("patient_sex") or ""))

    @property
    def view_position(self) -> str:
        return str((self.study.dicom_metadata or {}).get("view_position") or "")


def _row(study: Study, *, now: Any, target_minutes: int) -> WorklistRow:
    reviews: list[Review] = getattr(study, "reviews_newest_first", None) or []
    first = reviews[-1] if reviews else None
    return WorklistRow(
        study=study,
        prediction=selectors.study_primary_prediction(study),
        latest_review=reviews[0] if reviews else None,
        first_review=first,
        origin=selectors.study_origin(study),
        waiting=triage.waiting(
            received=study.created_at,
            first_review=first.created_at if first is not None else None,
            now=now,
            target_minutes=target_minutes,
        ),
    )


def _sort_links(request: HttpRequest, current: str, descending: bool) -> dict[str, dict[str, str]]:
    """For each sortable column: the query string that sorts by it (toggling direction) and its aria-sort."""
    links: dict[str, dict[str, str]] = {}
    for key in triage.SORTS:
        query = request.GET.copy()
        query.pop("page", None)
        query["sort"] = f"-{key}" if key == current and not descending else key
        state = "none"
        if key == current:
            state = "descending" if descending else "ascending"
        links[key] = {"query": query.urlencode(), "aria": state}
    return links


def worklist_context(request: HttpRequest, *, poll: bool = False) -> dict[str, Any]:
    """The worklist page's rows, audited: who was shown which studies (a poll repeating the same ids is not)."""
    form = WorklistFilterForm(request.GET)
    filters = form.filters()
    studies = triage.worklist_studies(user=request.user, **filters)
    page: Page[Study] = Paginator(studies, views.WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    now = timezone.now()
    target = int(settings.PNEUMO_TURNAROUND_TARGET_MINUTES)
    rows = [_row(study, now=now, target_minutes=target) for study in page.object_list]
    study_list_record_view(
        user=request_user(request),
        study_ids=[row.study.id for row in rows],
        request=request,
        where="dashboard.worklist",
        page=page.number,
        total=page.paginator.count,
        remember_in_session=True,
        skip_if_unchanged=poll,
    )
    query = request.GET.copy()
    query.pop("page", None)
    versions = {row.model_version.pk: row.model_version for row in rows}
    sort_key, descending = triage.worklist_sort(filters["sort"])
    scope_query = request.GET.copy()
    for name in ("page", "scope"):
        scope_query.pop(name, None)
    return {
        "form": form,
        "page": page,
        "rows": rows,
        "any_unvalidated": any(row.unvalidated for row in rows),
        "filter_query": query.urlencode(),
        "now": now,
        "scope": filters["scope"],
        "scopes": list(triage.SCOPES.items()),
        "scope_query": scope_query.urlencode(),
        "search": filters["query"],
        "sorts": _sort_links(request, sort_key, descending),
        # One version on the page: named once above the table rather than repeated on every row.
        "show_model_column": len(versions) > 1,
        "only_version": next(iter(versions.values())) if len(versions) == 1 else None,
        "turnaround_target": target,
    }


@require_GET
@radiologist_required
def worklist(request: HttpRequest) -> HttpResponse:
    context = worklist_context(request)
    context["poll_seconds"] = views.WORKLIST_POLL_SECONDS  # read per request: tests shorten it
    return render(request, "diagnosis/worklist.html", context)


@require_GET
@_json_only
def worklist_rows(request: HttpRequest) -> JsonResponse:
    """What the worklist's script polls: the table body and pagination for the same tab, search, sort and page."""
    context = worklist_context(request, poll=True)
    page: Page[Study] = context["page"]
    return JsonResponse(
        {
            "rows_html": render_to_string("diagnosis/_worklist_rows.html", context, request=request),
            "pagination_html": render_to_string("diagnosis/_worklist_pagination.html", context, request=request),
            "count": page.paginator.count,
            "ids": [str(row.study.id) for row in context["rows"]],
            "any_unvalidated": context["any_unvalidated"],
            "show_model_column": context["show_model_column"],
            "generated_at": context["now"].isoformat(),
        }
    )


# --- Thumbnails --------------------------------------------------------------------------------------------------


def _thumbnail_png(study: Study) -> bytes:
    # The display PNG is our own rendering (8-bit grayscale written by the worker), so decoding it in the web
    # process is safe; uploads themselves are never decoded here.
    with study.display_image.open("rb") as handle, Image.open(handle) as image:
        image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        out = io.BytesIO()
        image.convert("L").save(out, format="PNG", optimize=True)
    return out.getvalue()


@require_GET
@_json_only
def study_thumbnail(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    """A 96 px thumbnail of the study's display image, for worklist rows that may see it (404 otherwise).

    Made lazily with Pillow and kept in the cache (keyed by the display file's name, which changes when it is
    re-rendered). Not audited on its own: the worklist that shows it records which studies were listed.
    """
    found = (
        selectors.study_list_visible_to(user=request.user)
        .select_related(None)
        .prefetch_related(None)
        .filter(pk=study_id)
        .only("id", "display_image")
        .first()
    )
    if found is None or not found.display_image:
        raise Http404("No image for this study yet.")
    key = f"thumb:{found.id}:{found.display_image.name}"
    data: bytes | None = None
    try:
        data = cache.get(key)
    except RedisError:
        logger.warning("cache unavailable; thumbnail rendered without it")
    if data is None:
        try:
            data = _thumbnail_png(found)
        except (OSError, ValueError) as exc:
            raise Http404("The image cannot be read.") from exc
        with contextlib.suppress(RedisError):  # a thumbnail without the cache is only slower
            cache.set(key, data, timeout=24 * 3600)
    return HttpResponse(data, content_type="image/png")
