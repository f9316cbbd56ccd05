"""Getting results to the PACS after something went wrong: resends asked for by an admin, and the reconciler
that re-sends from the database what Redis lost (it keeps nothing on disk: a restart loses every queued message).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AnonymousUser, User
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.http import HttpRequest
from django.utils import timezone

from diagnosis.models import AuditAction, ResultObject, ResultSend, Review, Study
from diagnosis.selectors.pacs_results import dicom_nodes_receiving_results
from diagnosis.services import dispatch
from diagnosis.services.audit import audit_record
from diagnosis.services.pacs_results import result_send_create, result_send_details

logger = logging.getLogger(__name__)

# The reconciler looks this far back for completed studies and reviews whose result objects were never made, and
# leaves alone what is younger than the grace period (its own message is probably still in the queue).
RECONCILE_LOOKBACK = timedelta(hours=6)
RECONCILE_GRACE = timedelta(minutes=10)
# A pending send untouched for longer than the longest backoff plus this margin has lost its message.
STALE_SEND_MARGIN = timedelta(minutes=2)


def _resend_audit(
    *, send: ResultSend, previous: str, actor: User | AnonymousUser | None, request: HttpRequest | None
) -> None:
    audit_record(
        action=AuditAction.RESULT_RESEND_REQUESTED,
        subject_type="study",
        subject_id=str(send.result.study_id),
        actor=actor,
        request=request,
        details={**result_send_details(send), "previous_status": previous},
    )


@transaction.atomic
def result_sends_resend(
    *, sends: Iterable[ResultSend], actor: User | AnonymousUser | None = None, request: HttpRequest | None = None
) -> int:
    """Send these again from scratch (pending, no attempts). A pending send is already on its way: left alone."""
    count = 0
    ids = [send.id for send in sends]
    for send in ResultSend.objects.select_for_update().select_related("result").filter(id__in=ids):
        if send.status == ResultSend.Status.PENDING:
            continue
        previous = send.status
        send.status, send.attempts, send.error, send.sent_at = ResultSend.Status.PENDING, 0, "", None
        send.save(update_fields=["status", "attempts", "error", "sent_at", "updated_at"])
        _resend_audit(send=send, previous=previous, actor=actor, request=request)
        dispatch.enqueue_on_commit(dispatch.RESULT_SEND, send.id)
        count += 1
    return count


@transaction.atomic
def result_objects_resend(
    *, results: Iterable[ResultObject], actor: User | AnonymousUser | None = None, request: HttpRequest | None = None
) -> int:
    """Send these objects to every result destination that has not got them: new sends, and failed ones again."""
    count = 0
    nodes = list(dicom_nodes_receiving_results())
    for result in results:
        sends = {send.node_id: send for send in result.sends.select_for_update()}
        for node in nodes:
            send = sends.get(node.id)
            if send is None:
                send = result_send_create(result=result, node=node)
                _resend_audit(send=send, previous="none", actor=actor, request=request)
                count += 1
            elif send.status == ResultSend.Status.FAILED:
                count += result_sends_resend(sends=[send], actor=actor, request=request)
    return count


def pacs_results_reconcile() -> dict[str, int]:
    """Queue again the results work whose message was lost: missing AI objects, missing verified SRs, stale sends.

    Duplicates are harmless (every step is idempotent); the grace period and the ``updated_at`` stamp keep them few.
    """
    now = timezone.now()
    window = (now - RECONCILE_LOOKBACK, now - RECONCILE_GRACE)
    has_ai_objects = ResultObject.objects.filter(study=OuterRef("pk"), review__isnull=True)
    studies = Study.objects.filter(
        status=Study.Status.COMPLETED, format=Study.Format.DICOM, completed_at__range=window
    ).exclude(Exists(has_ai_objects))
    study_ids = [str(pk) for pk in studies.values_list("id", flat=True)[:500]]
    has_verified = ResultObject.objects.filter(review=OuterRef("pk"))
    reviews = Review.objects.filter(study__format=Study.Format.DICOM, created_at__range=window).exclude(
        Exists(has_verified)
    )
    review_ids = list(reviews.values_list("id", flat=True)[:500])
    stale_before = now - timedelta(seconds=settings.PNEUMO_RESULT_SEND_BACKOFF_MAX_SECONDS) - STALE_SEND_MARGIN
    with transaction.atomic():
        stale = ResultSend.objects.select_for_update(skip_locked=True).filter(
            status=ResultSend.Status.PENDING, updated_at__lt=stale_before
        )
        send_ids = list(stale.values_list("id", flat=True)[:500])
        ResultSend.objects.filter(id__in=send_ids).update(updated_at=now)  # at most one re-send per period
        for study_id in study_ids:
            dispatch.enqueue_on_commit(dispatch.STUDY_RESULTS_CREATE, study_id)
        for review_id in review_ids:
            dispatch.enqueue_on_commit(dispatch.REVIEW_RESULT_CREATE, review_id)
        for send_id in send_ids:
            dispatch.enqueue_on_commit(dispatch.RESULT_SEND, send_id)
    counts = {"studies": len(study_ids), "reviews": len(review_ids), "sends": len(send_ids)}
    if any(counts.values()):
        logger.info("re-queued PACS results work whose message was lost: %s", counts)
    return counts
