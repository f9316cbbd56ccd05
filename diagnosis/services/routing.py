"""Which model version serves a new study: deterministic by study id over the serving versions' traffic shares."""

from __future__ import annotations

import hashlib
import uuid

from diagnosis.models import ModelVersion
from diagnosis.selectors.model_versions import model_version_serving


def traffic_bucket(study_id: uuid.UUID) -> int:
    """A stable bucket in [0, 100) for a study: a retry or re-run lands on the same version."""
    return int.from_bytes(hashlib.sha256(study_id.bytes).digest()[:8], "big") % 100


def model_version_for_new_study(*, study_id: uuid.UUID) -> ModelVersion | None:
    serving = model_version_serving()
    if not serving:
        return None
    bucket = traffic_bucket(study_id)
    cumulative = 0
    for version in serving:
        cumulative += version.traffic_share
        if bucket < cumulative:
            return version
    # Shares are kept summing to 100 by the services; fall back to the last one rather than lose a study.
    return serving[-1]
