"""Registering, shadowing, sharing traffic, activating and retiring model versions: each audited, each refusal clear."""

from __future__ import annotations

import random
import uuid
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from diagnosis.exceptions import ModelVersionError
from diagnosis.models import AuditEvent, ModelVersion
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import (
    model_version_activate,
    model_version_retire,
    model_version_set_shadow,
    model_version_set_traffic,
)
from diagnosis.services.routing import model_version_for_new_study
from tests.factories import png_bytes
from tests.lifecycle.conftest import make_version, write_fake_artifact

pytestmark = pytest.mark.django_db

Status = ModelVersion.Status


def _events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("id"))


def _refresh(*versions: ModelVersion) -> list[tuple[str, str, int]]:
    return [
        (v.version, v.status, v.traffic_share)
        for v in ModelVersion.objects.filter(pk__in=[v.pk for v in versions]).order_by("version")
    ]


# --- register ---------------------------------------------------------------------------------------------------


def test_register_keeps_the_manifest_threshold_and_audits_who_did_it(tmp_path: Path, admin: Any) -> None:
    folder = write_fake_artifact(tmp_path / "v9", version="v9")
    version = model_version_register(path=folder, actor=admin, notes="from the lab")
    assert (version.version, version.status, version.threshold, version.is_calibrated) == (
        "v9",
        Status.REGISTERED,
        0.31,
        True,
    )
    assert version.validation_scores == [0.1, 0.2, 0.8]
    (event,) = _events("model.registered")
    assert event.actor == admin and event.subject_id == "v9" and event.details["sha256"] == version.sha256


def test_register_refuses_weights_that_do_not_match_the_manifest(tmp_path: Path) -> None:
    folder = write_fake_artifact(tmp_path / "v9", version="v9")
    (folder / "model.keras").write_bytes(b"swapped")
    with pytest.raises(ModelVersionError, match="sha256"):
        model_version_register(path=folder)
    assert not ModelVersion.objects.exists() and not _events("model.registered")


def test_register_of_an_uncalibrated_artifact_gives_an_uncalibrated_version(tmp_path: Path) -> None:
    folder = write_fake_artifact(tmp_path / "nb", version="nb", method="uncalibrated")
    assert model_version_register(path=folder).is_calibrated is False


def test_register_refuses_an_h5_version_name_that_could_escape_the_model_folder(tmp_path: Path) -> None:
    h5 = tmp_path / "resnet50_final_best.h5"
    h5.write_bytes(b"\x89HDF\r\n\x1a\n")
    with pytest.raises(ModelVersionError, match="cannot name a model folder"):
        model_version_register(path=h5, version="../../etc")


# --- traffic ----------------------------------------------------------------------------------------------------


def test_set_traffic_splits_new_studies_and_audits_old_and_new_shares(
    v3: ModelVersion, v4: ModelVersion, admin: Any
) -> None:
    serving = model_version_set_traffic(shares={"v3": 90, "v4": 10}, actor=admin)
    assert [(v.version, v.traffic_share) for v in serving] == [("v3", 90), ("v4", 10)]
    assert _refresh(v3, v4) == [("v3", Status.ACTIVE, 90), ("v4", Status.ACTIVE, 10)]
    (event,) = _events("model.traffic_changed")
    assert event.actor == admin
    assert event.details["old"] == {"v3": 100} and event.details["new"] == {"v3": 90, "v4": 10}


def test_versions_left_out_of_the_traffic_stop_serving_as_registered(v3: ModelVersion, v4: ModelVersion) -> None:
    model_version_set_traffic(shares={"v3": 50, "v4": 50})
    model_version_set_traffic(shares={"v4": 100})
    assert _refresh(v3, v4) == [("v3", Status.REGISTERED, 0), ("v4", Status.ACTIVE, 100)]
    last = _events("model.traffic_changed")[-1]
    assert last.details["stopped_serving"] == ["v3"] and last.details["stopped_serving_status"] == "registered"


def test_an_unchanged_traffic_split_writes_no_audit_event(v3: ModelVersion) -> None:
    model_version_set_traffic(shares={"v3": 100})
    assert not _events("model.traffic_changed")


def test_an_uncalibrated_version_is_refused_traffic(v3: ModelVersion) -> None:
    make_version("v5", calibrated=False)
    with pytest.raises(ModelVersionError, match="v5 has no calibrated threshold; calibrate it before it takes traffic"):
        model_version_set_traffic(shares={"v3": 90, "v5": 10})
    assert _refresh(v3) == [("v3", Status.ACTIVE, 100)] and not _events("model.traffic_changed")


@pytest.mark.parametrize(
    ("shares", "message"),
    [
        ({"v3": 90, "v4": 5}, "add up to 100 %; these add up to 95 %"),
        ({"v3": 90, "v4": 20}, "add up to 110 %"),
        ({"v3": 100, "v4": 0}, "between 1 and 100"),
        ({"v3": 50.5, "v4": 49.5}, "whole number"),
        ({"v3": True}, "whole number"),
        ({}, "at least one version"),
        ({"v3": 50, "nope": 50}, "No model version named nope"),
    ],
)
def test_traffic_shares_that_do_not_make_100_percent_are_refused(
    v3: ModelVersion, v4: ModelVersion, shares: dict[str, Any], message: str
) -> None:
    with pytest.raises(ModelVersionError, match=message):
        model_version_set_traffic(shares=shares)
    assert _refresh(v3, v4) == [("v3", Status.ACTIVE, 100), ("v4", Status.REGISTERED, 0)]


def test_a_retired_version_is_refused_traffic(v3: ModelVersion) -> None:
    make_version("old", status=Status.RETIRED)
    with pytest.raises(ModelVersionError, match="old is retired"):
        model_version_set_traffic(shares={"v3": 50, "old": 50})


def test_routing_splits_50_50_within_sampling_error_and_is_deterministic(v3: ModelVersion, v4: ModelVersion) -> None:
    model_version_set_traffic(shares={"v3": 50, "v4": 50})
    rng = random.Random(20260101)
    ids = [uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(2000)]
    assigned = [model_version_for_new_study(study_id=study_id).version for study_id in ids]
    # Binomial(2000, 0.5): sd = 22.4; 99.9 % two-sided bounds = 1000 +- 3.29 sd = [927, 1073].
    assert 927 <= assigned.count("v4") <= 1073
    assert [model_version_for_new_study(study_id=i).version for i in ids[:200]] == assigned[:200]


def test_a_traffic_change_applies_to_studies_queued_after_it(
    v3: ModelVersion, v4: ModelVersion, enqueue: Any, admin: Any
) -> None:
    from diagnosis.services.studies import study_create_from_upload

    def upload(width: int) -> Any:
        # Two different files: the same file sent twice would be one study (an upload retry).
        data = png_bytes(width=width)
        return study_create_from_upload(
            upload=SimpleUploadedFile("x.png", data, content_type="image/png"), uploaded_by=admin, source="api"
        ).study

    before = upload(64)
    model_version_set_traffic(shares={"v4": 100})
    after = upload(65)
    before.refresh_from_db()
    assert before.model_version == v3 and after.model_version == v4


# --- shadow -----------------------------------------------------------------------------------------------------


def test_put_in_shadow_runs_without_traffic_and_is_audited(v3: ModelVersion, v4: ModelVersion, admin: Any) -> None:
    shadow = model_version_set_shadow(model_version=v4, actor=admin)
    assert (shadow.status, shadow.traffic_share) == (Status.SHADOW, 0)
    (event,) = _events("model.shadowed")
    assert event.actor == admin and event.subject_id == "v4" and event.details["old_status"] == "registered"
    assert model_version_set_shadow(model_version=v4) == shadow and len(_events("model.shadowed")) == 1


def test_an_uncalibrated_version_may_run_in_shadow(v3: ModelVersion) -> None:
    imported = make_version("nb", calibrated=False)
    assert model_version_set_shadow(model_version=imported).status == Status.SHADOW


def test_the_only_serving_version_cannot_go_to_shadow(v3: ModelVersion) -> None:
    with pytest.raises(ModelVersionError, match="only serving version"):
        model_version_set_shadow(model_version=v3)


def test_a_version_serving_part_of_the_traffic_cannot_go_to_shadow(v3: ModelVersion, v4: ModelVersion) -> None:
    model_version_set_traffic(shares={"v3": 60, "v4": 40})
    with pytest.raises(ModelVersionError, match="serves 40 % .* adding up to 60 %. Set traffic without it first"):
        model_version_set_shadow(model_version=v4)


# --- retire and activate ----------------------------------------------------------------------------------------


def test_retire_a_shadow_version_and_audit_it(v3: ModelVersion, v4: ModelVersion, admin: Any) -> None:
    model_version_set_shadow(model_version=v4)
    retired = model_version_retire(model_version=v4, actor=admin)
    assert retired.status == Status.RETIRED and retired.retired_at is not None
    (event,) = _events("model.retired")
    assert event.actor == admin and event.details == {"old_status": "shadow"}


def test_retiring_the_only_serving_version_is_refused(v3: ModelVersion) -> None:
    with pytest.raises(ModelVersionError, match="v3 is the only serving version"):
        model_version_retire(model_version=v3)
    assert _refresh(v3) == [("v3", Status.ACTIVE, 100)]


def test_retiring_a_version_that_serves_part_of_the_traffic_is_refused(v3: ModelVersion, v4: ModelVersion) -> None:
    model_version_set_traffic(shares={"v3": 90, "v4": 10})
    with pytest.raises(ModelVersionError, match="Set traffic without it first"):
        model_version_retire(model_version=v3)


def test_activate_makes_one_version_serve_everything_and_retires_the_others(
    v3: ModelVersion, v4: ModelVersion, admin: Any
) -> None:
    model_version_set_traffic(shares={"v3": 50, "v4": 50})
    v5 = make_version("v5")
    model_version_activate(model_version=v5, actor=admin)
    assert _refresh(v3, v4, v5) == [("v3", Status.RETIRED, 0), ("v4", Status.RETIRED, 0), ("v5", Status.ACTIVE, 100)]
    assert _events("model.activated")[-1].actor == admin


def test_activate_refuses_an_uncalibrated_version_unless_it_is_the_unvalidated_demo(v3: ModelVersion) -> None:
    imported = make_version("nb", calibrated=False, validated=False)
    with pytest.raises(ModelVersionError, match="no calibrated threshold"):
        model_version_activate(model_version=imported)
    assert model_version_activate(model_version=imported, allow_unvalidated=True).traffic_share == 100


def test_the_register_task_leaves_a_refusal_in_the_audit_log(tmp_path: Path, admin: Any) -> None:
    from diagnosis.tasks.lifecycle import model_version_register_task

    result = model_version_register_task.delay(str(tmp_path / "missing"), "v8", "", admin.pk).get()
    assert result["ok"] is False and "Cannot register" in result["error"]
    (event,) = _events("model.register_failed")
    assert event.actor == admin and event.subject_id == "v8"
    folder = write_fake_artifact(tmp_path / "v8", version="v8")
    assert model_version_register_task.delay(str(folder), None, "", admin.pk).get()["ok"] is True
    assert _events("model.registered")[-1].actor == admin
