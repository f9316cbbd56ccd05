"""The model lifecycle after registration: shadow, share traffic, activate, retire.

Every change locks the rows it reads (``select_for_update``) and writes its audit event in the same transaction.
Invariants kept here: a version whose threshold was never calibrated takes no traffic (the untrained demo model,
``validated=False``, is the one exception and only through ``model_version_activate(allow_unvalidated=True)``);
the traffic shares of the serving versions (status ``active``, share > 0) add up to 100 %. A change applies to
studies queued after it: a study keeps the version it was assigned when it was queued.

Registering lives in :mod:`diagnosis.services.model_registration`, calibration in
:mod:`diagnosis.services.calibration`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from django.contrib.auth.models import User
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from diagnosis.exceptions import ModelVersionError
from diagnosis.models import AuditAction, ModelVersion
from diagnosis.services.audit import audit_record

logger = logging.getLogger(__name__)

#: Where a version goes when ``model_version_set_traffic`` leaves it out (it can serve again later).
STOPPED_SERVING_STATUS = ModelVersion.Status.REGISTERED


def _refuse_uncalibrated(model_version: ModelVersion) -> None:
    if not model_version.is_calibrated:
        raise ModelVersionError(
            f"{model_version.version} has no calibrated threshold; calibrate it before it takes traffic."
        )


@transaction.atomic
def model_version_activate(
    *,
    model_version: ModelVersion,
    actor: User | None = None,
    request: HttpRequest | None = None,
    allow_unvalidated: bool = False,
) -> ModelVersion:
    """Make this version the only serving one (100 % of new studies); others that served are retired."""
    model_version = ModelVersion.objects.select_for_update().get(pk=model_version.pk)
    if model_version.status == ModelVersion.Status.ACTIVE and model_version.traffic_share == 100:
        return model_version
    if not (allow_unvalidated and not model_version.validated):
        _refuse_uncalibrated(model_version)
    previous = list(
        ModelVersion.objects.select_for_update().filter(status=ModelVersion.Status.ACTIVE).exclude(pk=model_version.pk)
    )
    now = timezone.now()
    for old in previous:
        old.status, old.traffic_share, old.retired_at = ModelVersion.Status.RETIRED, 0, now
        old.save(update_fields=["status", "traffic_share", "retired_at"])
        audit_record(
            action=AuditAction.MODEL_RETIRED,
            subject_type="model_version",
            subject_id=old.version,
            actor=actor,
            request=request,
            details={"replaced_by": model_version.version},
        )
    model_version.status, model_version.traffic_share, model_version.activated_at = (
        ModelVersion.Status.ACTIVE,
        100,
        now,
    )
    model_version.retired_at = None
    model_version.save(update_fields=["status", "traffic_share", "activated_at", "retired_at"])
    audit_record(
        action=AuditAction.MODEL_ACTIVATED,
        subject_type="model_version",
        subject_id=model_version.version,
        actor=actor,
        request=request,
        details={
            "threshold": model_version.threshold,
            "validated": model_version.validated,
            "replaced": [old.version for old in previous],
        },
    )
    return model_version


def _serving_shares(versions: list[ModelVersion]) -> dict[str, int]:
    return {v.version: v.traffic_share for v in versions if v.is_serving}


def _shares_text(shares: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {share} %" for name, share in shares.items()) or "none"


def _refuse_leaving_a_gap(model_version: ModelVersion, doing: str) -> None:
    """A serving version cannot simply leave: the others' shares would no longer add up to 100 %."""
    others = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE, traffic_share__gt=0).exclude(
        pk=model_version.pk
    )
    if not others.exists():
        raise ModelVersionError(
            f"{model_version.version} is the only serving version: activate another version (or set traffic to "
            f"other versions) before you {doing} it."
        )
    rest = 100 - model_version.traffic_share
    raise ModelVersionError(
        f"{model_version.version} serves {model_version.traffic_share} % of new studies; to {doing} it would leave "
        f"the traffic shares adding up to {rest} %. Set traffic without it first, then {doing} it."
    )


@transaction.atomic
def model_version_set_shadow(
    *, model_version: ModelVersion, actor: User | None = None, request: HttpRequest | None = None
) -> ModelVersion:
    """Run this version on every new study without showing its output (its predictions are stored and reported).

    An uncalibrated version may run in shadow (it takes no traffic), though its live report only means something
    once it is calibrated.
    """
    list(ModelVersion.objects.select_for_update().order_by("id"))  # lock every version: shares are a set invariant
    model_version = ModelVersion.objects.get(pk=model_version.pk)
    if model_version.status == ModelVersion.Status.SHADOW:
        return model_version
    if model_version.is_serving:
        _refuse_leaving_a_gap(model_version, "put in shadow")
    old_status = model_version.status
    model_version.status, model_version.traffic_share, model_version.retired_at = (ModelVersion.Status.SHADOW, 0, None)
    model_version.save(update_fields=["status", "traffic_share", "retired_at"])
    audit_record(
        action=AuditAction.MODEL_SHADOWED,
        subject_type="model_version",
        subject_id=model_version.version,
        actor=actor,
        request=request,
        details={
            "old_status": old_status,
            "calibrated": model_version.is_calibrated,
            "note": "runs on every study queued from now on; its predictions are stored and reported but never shown",
        },
    )
    return model_version


def _validated_shares(shares: Mapping[str, int]) -> dict[str, int]:
    if not shares:
        raise ModelVersionError("Name at least one version to serve new studies (for example v3=100).")
    checked: dict[str, int] = {}
    for name, share in shares.items():
        if isinstance(share, bool) or not isinstance(share, int):
            raise ModelVersionError(f"The share of {name} must be a whole number of percent. Received: {share!r}")
        if not 1 <= share <= 100:
            raise ModelVersionError(
                f"The share of {name} must be between 1 and 100 %. Received: {share}. "
                "Leave a version out to stop it serving."
            )
        checked[str(name)] = share
    total = sum(checked.values())
    if total != 100:
        raise ModelVersionError(
            f"Traffic shares must add up to 100 %; these add up to {total} % ({_shares_text(checked)})."
        )
    return checked


@transaction.atomic
def model_version_set_traffic(
    *, shares: Mapping[str, int], actor: User | None = None, request: HttpRequest | None = None
) -> list[ModelVersion]:
    """Set the complete split of new studies between serving versions, e.g. ``{"v3": 90, "v4": 10}``.

    Every named version must be calibrated and not retired; shares are whole percents adding up to 100. Versions
    that served and are not named stop serving (status ``registered``, share 0). Studies already queued keep
    their version. Returns the serving versions, largest share first.
    """
    requested = _validated_shares(shares)
    versions = {v.version: v for v in ModelVersion.objects.select_for_update().order_by("id")}
    unknown = sorted(set(requested) - set(versions))
    if unknown:
        raise ModelVersionError(
            f"No model version named {', '.join(unknown)}. Registered: {', '.join(versions) or 'none'}."
        )
    for name in requested:
        if versions[name].status == ModelVersion.Status.RETIRED:
            raise ModelVersionError(f"{name} is retired; a retired version takes no traffic.")
        _refuse_uncalibrated(versions[name])
    old = _serving_shares(list(versions.values()))
    ordered = sorted(requested, key=lambda name: (-requested[name], name))
    if old == requested:
        return [versions[name] for name in ordered]
    now = timezone.now()
    stopped = []
    for model_version in versions.values():
        if model_version.version in requested:
            if model_version.status != ModelVersion.Status.ACTIVE:
                model_version.activated_at = now
            model_version.status = ModelVersion.Status.ACTIVE
            model_version.traffic_share = requested[model_version.version]
        elif model_version.status == ModelVersion.Status.ACTIVE:
            model_version.status, model_version.traffic_share = STOPPED_SERVING_STATUS, 0
            stopped.append(model_version.version)
        else:
            continue
        model_version.save(update_fields=["status", "traffic_share", "activated_at"])
    audit_record(
        action=AuditAction.MODEL_TRAFFIC_CHANGED,
        subject_type="model_traffic",
        subject_id="serving",
        actor=actor,
        request=request,
        details={
            "old": old,
            "new": {name: requested[name] for name in ordered},
            "stopped_serving": stopped,
            "stopped_serving_status": STOPPED_SERVING_STATUS.value,
            "note": "applies to studies queued from now on; queued studies keep their version",
        },
    )
    return [versions[name] for name in ordered]


@transaction.atomic
def model_version_retire(
    *, model_version: ModelVersion, actor: User | None = None, request: HttpRequest | None = None
) -> ModelVersion:
    """Stop a shadow or registered version for good. A serving version must first be taken out of the traffic."""
    list(ModelVersion.objects.select_for_update().order_by("id"))
    model_version = ModelVersion.objects.get(pk=model_version.pk)
    if model_version.status == ModelVersion.Status.RETIRED:
        return model_version
    if model_version.is_serving:
        _refuse_leaving_a_gap(model_version, "retire")
    old_status = model_version.status
    model_version.status, model_version.traffic_share, model_version.retired_at = (
        ModelVersion.Status.RETIRED,
        0,
        timezone.now(),
    )
    model_version.save(update_fields=["status", "traffic_share", "retired_at"])
    audit_record(
        action=AuditAction.MODEL_RETIRED,
        subject_type="model_version",
        subject_id=model_version.version,
        actor=actor,
        request=request,
        details={"old_status": old_status},
    )
    return model_version
