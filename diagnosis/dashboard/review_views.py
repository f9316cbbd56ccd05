"""The review POST of the study page: record a first review, amend the standing one, or save and go to the next.

Thin: the form parses, ``services.reviews.review_create`` decides (reason for an override, explicit amendment,
no silent second review) and audits, ``selectors.reviews.study_next_unreviewed`` finds the next study.
"""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from diagnosis.dashboard.forms import ReviewForm
from diagnosis.dashboard.views import radiologist_required, render_study, request_user, study_or_404
from diagnosis.exceptions import ApplicationError
from diagnosis.models import Review
from diagnosis.selectors.reviews import study_next_unreviewed
from diagnosis.services.reviews import review_create

#: The value of the ``then`` submit button that saves and opens the next study awaiting review.
THEN_NEXT = "next"


def _recorded_message(review: Review, amended: bool) -> str:
    if amended:
        return f"Review amended: {review.get_finding_display()}. The earlier review is kept in the history."
    suffix = ""
    if review.agrees_with_model is not None:
        suffix = " (confirms the AI finding)" if review.agrees_with_model else " (overrides the AI finding)"
    elif review.prediction is not None and review.finding != review.prediction.label:
        suffix = " (overrides the AI finding)"
    return f"Review recorded: {review.get_finding_display()}{suffix}."


@require_POST
@radiologist_required
def study_review(request: HttpRequest, study_id: uuid.UUID) -> HttpResponse:
    study = study_or_404(request, study_id)
    form = ReviewForm(request.POST)
    amend = request.POST.get("amend") in ("1", "true", "True", "on")
    if not form.is_valid():
        return render_study(request, study, form=form, status=400, amending=amend)
    try:
        review = review_create(
            study=study,
            reviewer=request_user(request),
            finding=form.cleaned_data["finding"],
            comment=form.cleaned_data["comment"],
            amend=form.cleaned_data["amend"],
            request=request,
        )
    except ApplicationError as exc:
        # Refused (no reason for an override, a second review without "Amend", not completed): the page again,
        # with what the reader chose, the reason it was refused and the refusal's status code (400 or 409).
        messages.error(request, exc.message)
        if exc.extra.get("field") == "comment":
            form.add_error("comment", exc.message)
        return render_study(request, study, form=form, status=exc.status_code, amending=amend)
    messages.success(request, _recorded_message(review, form.cleaned_data["amend"]))
    if request.POST.get("then") == THEN_NEXT:
        following = study_next_unreviewed(user=request.user, exclude=study.id)
        if following is None:
            messages.info(request, "No more studies awaiting review.")
            return redirect("dashboard:worklist")
        return redirect("dashboard:study", study_id=following.id)
    return redirect("dashboard:study", study_id=study.id)
