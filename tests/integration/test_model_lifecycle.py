"""A hospital brings in a new model safely: shadow, then a traffic share, then it replaces the old one.

Real PostgreSQL, Redis and worker processes; two genuinely different (untrained) models, so the versions disagree.
"""

from __future__ import annotations

import io
import math
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from rest_framework.test import APIClient

from diagnosis.exceptions import ModelVersionError
from diagnosis.models import AuditEvent, ModelVersion, Prediction, Study
from diagnosis.selectors.performance import ab_report, version_live_performance
from diagnosis.services.audit import audit_chain_verify
from diagnosis.services.calibration import model_version_calibrate_on_folder
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import (
    model_version_activate,
    model_version_retire,
    model_version_set_shadow,
    model_version_set_traffic,
)
from tests.integration.conftest import ROOT, WorkerProcess, wait_for
from tests.integration.test_workflow import chest_like_png
from tests.mlcore.helpers_ml import write_class_folder

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _artifact(tmp_path: Path, name: str, seed: int) -> Path:
    code = (
        "import sys; from mlcore.artifact import create_demo_artifact; "
        "create_demo_artifact(sys.argv[1], image_size=64, seed=int(sys.argv[3]), version=sys.argv[2])"
    )
    out = tmp_path / name
    subprocess.run([sys.executable, "-c", code, str(out), name, str(seed)], check=True, cwd=ROOT, timeout=300)
    return out


def _submit(api: APIClient, n: int, seed0: int) -> list[str]:
    ids = []
    for i in range(n):
        response = api.post(
            "/api/v1/studies/", {"file": io.BytesIO(chest_like_png(160, 128, seed=seed0 + i))}, format="multipart"
        )
        assert response.status_code == 202, response.content
        ids.append(response.json()["id"])
    return ids


def _wait_done(ids: list[str], worker: WorkerProcess) -> None:
    wait_for(
        lambda: Study.objects.filter(id__in=ids, status__in=["completed", "failed"]).count() == len(ids),
        timeout=600,
        interval=0.5,
        on_timeout=worker.log_tail,
    )
    assert not Study.objects.filter(id__in=ids, status="failed").exists(), list(
        Study.objects.filter(id__in=ids, status="failed").values_list("error", flat=True)
    )


def test_shadow_then_ab_then_replace(
    roles: None,
    worker_env: dict[str, str],
    live_broker: None,
    tmp_path: Path,
) -> None:
    admin = User.objects.create_superuser("ada", password="x" * 12)
    integrator = User.objects.create_user("ris")
    integrator.groups.add(Group.objects.get(name="integrator"))
    radiologist = User.objects.create_user("rita")
    radiologist.groups.add(Group.objects.get(name="radiologist"))
    api, reader = APIClient(), APIClient()
    api.force_authenticate(integrator)
    reader.force_authenticate(radiologist)
    labelled = tmp_path / "calibration"
    write_class_folder(labelled, n_per_class=8, seed=5)

    v1 = model_version_register(path=_artifact(tmp_path, "v1", seed=1), version="v1", actor=admin)
    v2 = model_version_register(path=_artifact(tmp_path, "v2", seed=2), version="v2", actor=admin)
    with pytest.raises(ModelVersionError, match="calibrat"):
        model_version_set_traffic(shares={"v1": 100}, actor=admin)  # never calibrated: refused traffic
    model_version_calibrate_on_folder(model_version=v1, data_dir=labelled, target_sensitivity=0.95, actor=admin)
    model_version_set_traffic(shares={"v1": 100}, actor=admin)
    model_version_set_shadow(model_version=v2, actor=admin)

    worker = WorkerProcess(worker_env, tmp_path / "worker.log", "lifecycle@localhost")
    worker.start()
    try:
        # Shadow phase: v2 runs on every study but never becomes the finding.
        shadow_ids = _submit(api, 8, seed0=100)
        _wait_done(shadow_ids, worker)
        for study_id in shadow_ids:
            assert set(
                Prediction.objects.filter(study_id=study_id).values_list("model_version__version", "is_shadow")
            ) == {("v1", False), ("v2", True)}
            body = api.get(f"/api/v1/studies/{study_id}/").json()
            assert body["prediction"]["model_version"] == "v1"
        for i, study_id in enumerate(shadow_ids):
            response = reader.post(
                f"/api/v1/studies/{study_id}/review/",
                # A reason, in case the finding overrides v1's (issue 10: an override needs one).
                {"finding": "PNEUMONIA" if i % 2 else "NORMAL", "comment": "Lifecycle test reading."},
            )
            assert response.status_code == 201

        # Both versions' live metrics, checked against a count made here from the rows.
        for version in (v1, v2):
            performance = version_live_performance(model_version=version)
            assert performance["n_reviewed"] == 8
            agree = sum(
                Prediction.objects.get(study_id=sid, model_version=version).label
                == ("PNEUMONIA" if i % 2 else "NORMAL")
                for i, sid in enumerate(shadow_ids)
            )
            assert performance["agreement"]["k"] == agree
        assert {row["version"] for row in ab_report(versions=[v1, v2])["versions"]} == {"v1", "v2"}

        # A/B: calibrate v2, split 50/50; assignment is by study, at upload.
        with pytest.raises(ModelVersionError):
            model_version_set_traffic(shares={"v1": 50, "v2": 60}, actor=admin)
        model_version_calibrate_on_folder(model_version=v2, data_dir=labelled, target_sensitivity=0.95, actor=admin)
        model_version_set_traffic(shares={"v1": 50, "v2": 50}, actor=admin)
        n = 60
        ab_ids = _submit(api, n, seed0=1000)
        on_v2 = Study.objects.filter(id__in=ab_ids, model_version__version="v2").count()
        bound = 3.29 * math.sqrt(n * 0.25)  # 99.9 % binomial interval around n/2
        assert abs(on_v2 - n / 2) <= bound, on_v2
        _wait_done(ab_ids, worker)
        assert Prediction.objects.filter(study_id__in=ab_ids, is_shadow=True).count() == 0
        served = dict(Study.objects.filter(id__in=ab_ids).values_list("id", "model_version__version"))
        for prediction in Prediction.objects.filter(study_id__in=ab_ids):
            assert prediction.model_version.version == served[prediction.study_id]

        # Replace: v2 takes all traffic, v1 is retired.
        model_version_activate(model_version=v2, actor=admin)
        v1.refresh_from_db()
        if v1.status != ModelVersion.Status.RETIRED:
            model_version_retire(model_version=v1, actor=admin)
            v1.refresh_from_db()
        assert v1.status == ModelVersion.Status.RETIRED
        last = _submit(api, 1, seed0=5000)
        _wait_done(last, worker)
        assert Study.objects.get(id=last[0]).model_version.version == "v2"
    finally:
        worker.stop()

    steps = list(
        AuditEvent.objects.filter(action__startswith="model.").values_list("action", "subject_id", "actor_name")
    )
    actions = [(action, subject) for action, subject, _ in steps]
    for expected in [
        ("model.registered", "v1"),
        ("model.registered", "v2"),
        ("model.calibrated", "v1"),
        ("model.shadowed", "v2"),
        ("model.calibrated", "v2"),
        ("model.activated", "v2"),
        ("model.retired", "v1"),
    ]:
        assert expected in actions, expected
    assert sum(action == "model.traffic_changed" for action, _ in actions) == 2
    assert all(actor == "ada" for _, _, actor in steps)
    assert audit_chain_verify().ok


def test_a_notebook_h5_model_is_wrapped_calibrated_and_serves(
    roles: None,
    worker_env: dict[str, str],
    live_broker: None,
    tmp_path: Path,
) -> None:
    code = (
        "import sys; from mlcore.model import build_classifier; "
        "build_classifier(image_size=64, weights=None, seed=3).save(sys.argv[1])"
    )
    h5 = tmp_path / "resnet50_final_best.h5"
    subprocess.run([sys.executable, "-c", code, str(h5)], check=True, cwd=ROOT, timeout=300)
    labelled = tmp_path / "calibration"
    write_class_folder(labelled, n_per_class=6, seed=9)

    version = model_version_register(path=h5, version="notebook-final")
    assert version.threshold_calibrated_at is None
    assert version.preprocessing["clahe_clip_limit"] == 2.0 and version.image_size == 64
    with pytest.raises(ModelVersionError):
        model_version_set_traffic(shares={"notebook-final": 100})
    model_version_calibrate_on_folder(model_version=version, data_dir=labelled)
    model_version_set_traffic(shares={"notebook-final": 100})

    integrator = User.objects.create_user("pacs")
    integrator.groups.add(Group.objects.get(name="integrator"))
    api = APIClient()
    api.force_authenticate(integrator)
    worker = WorkerProcess(worker_env, tmp_path / "worker.log", "h5@localhost")
    worker.start()
    try:
        ids = _submit(api, 1, seed0=7)
        _wait_done(ids, worker)
    finally:
        worker.stop()
    body = api.get(f"/api/v1/studies/{ids[0]}/").json()
    assert body["prediction"]["model_version"] == "notebook-final"
    version.refresh_from_db()
    assert body["prediction"]["threshold"] == pytest.approx(version.threshold)
