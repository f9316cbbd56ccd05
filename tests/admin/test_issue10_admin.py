"""Admin after issue 10: branding, a truthful demo model, no rates from a handful of reviews, training presets."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from django.test import Client
from django.urls import reverse

from diagnosis.models import ModelVersion, TrainingRun
from diagnosis.services.model_versions import model_version_activate
from diagnosis.services.training_runs import training_run_record_progress
from mlcore.training_progress import TrainingProgress
from tests.admin.conftest import reviewed_prediction
from tests.factories import ModelVersionFactory, RadiologistFactory

pytestmark = pytest.mark.django_db


def version_url(name: str, *args: Any) -> str:
    return reverse(f"admin:diagnosis_modelversion_{name}", args=args)


def run_url(name: str, *args: Any) -> str:
    return reverse(f"admin:diagnosis_trainingrun_{name}", args=args)


def text(html: str) -> str:
    """The page's text with tags dropped and whitespace folded, to match sentences across markup."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


# --- Branding and favicon ---------------------------------------------------------------------------------------


def test_admin_is_branded_pneumoweb(staff_web: Client) -> None:
    page = staff_web.get(reverse("admin:index")).content.decode()
    assert "<title>Model versions, training, studies and the audit log | PneumoWeb admin</title>" in page
    assert "PneumoWeb administration" in page and "Django administration" not in page
    assert 'rel="icon"' in page


def test_favicon_ico_answers_with_the_icon_and_pages_link_it(client: Client) -> None:
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/diagnosis/favicon.ico"
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and b"".join(icon.streaming_content).startswith(b"\x00\x00\x01\x00")  # ICO
    login = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/diagnosis/favicon.svg" type="image/svg+xml">' in login
    assert client.get("/static/diagnosis/favicon.svg").status_code == 200


# --- The demo model: serving without a calibrated threshold, said so ------------------------------------------------


@pytest.fixture
def demo() -> ModelVersion:
    version = ModelVersionFactory(
        version="demo-untrained",
        status=ModelVersion.Status.REGISTERED,
        traffic_share=0,
        validated=False,
        threshold_calibrated_at=None,
        threshold_method={},
    )
    return model_version_activate(model_version=version, allow_unvalidated=True)  # as create_demo_model does


def test_the_serving_demo_model_is_shown_as_the_exception_not_as_a_contradiction(
    staff_web: Client, demo: ModelVersion
) -> None:
    page = text(staff_web.get(version_url("change", demo.pk)).content.decode())
    assert "100 % of new studies: it serves only as the untrained demo model" in page
    assert "cannot take traffic until its threshold is calibrated" not in page
    assert "Never calibrated: it serves only as the untrained demo model" in page

    traffic = staff_web.get(version_url("traffic")).content.decode()
    demo_row = re.search(r'<tr class="traffic-demo" data-version="demo-untrained">(.*?)</tr>', traffic, re.S)
    assert demo_row is not None and "100 %" in demo_row.group(1)
    assert re.search(r'id="serving-total">\s*100 %', traffic)  # serving now: 100 %, not "Total 0 %"
    assert 'name="share-' not in demo_row.group(1)  # no share can be given to it here

    changelist = text(staff_web.get(version_url("changelist")).content.decode())
    assert "100 % (untrained demo, uncalibrated)" in changelist


def test_an_uncalibrated_version_that_does_not_serve_still_reads_cannot_take_traffic(staff_web: Client) -> None:
    version = ModelVersionFactory(
        version="v-new", status=ModelVersion.Status.REGISTERED, traffic_share=0, threshold_calibrated_at=None
    )
    page = text(staff_web.get(version_url("change", version.pk)).content.decode())
    assert "this version cannot take traffic until its threshold is calibrated" in page
    assert "the untrained demo model" not in page


# --- Live rates: hidden below a minimum number of reviewed studies ------------------------------------------------


def test_rates_and_auc_are_hidden_below_the_minimum_n_which_the_page_states(staff_web: Client, settings: Any) -> None:
    version = ModelVersionFactory(version="v-live")
    radiologist = RadiologistFactory()
    reviewed_prediction(version, 0.9, "PNEUMONIA", reviewer=radiologist)
    reviewed_prediction(version, 0.8, "NORMAL", reviewer=radiologist)

    page = staff_web.get(version_url("change", version.pk)).content.decode()
    assert 'id="live-too-few"' in page and 'data-live="auc"' not in page
    assert "Too few reviewed studies: rates and AUC are shown from 30 reviewed studies" in text(page)
    assert (
        "too few reviewed studies (n = 2; shown from n = 30)"
        in staff_web.get(version_url("changelist")).content.decode()
    )
    report = text(staff_web.get(version_url("ab_report")).content.decode())
    assert "Too few reviewed studies (n = 2; rates are shown from 30)" in report
    assert "at least 30 reviewed studies" in report

    settings.PNEUMO_LIVE_METRICS_MIN_N = 2
    page = staff_web.get(version_url("change", version.pk)).content.decode()
    assert 'id="live-too-few"' not in page and 'data-live="auc"' in page and 'data-live="sensitivity"' in page


# --- Training form: presets, estimates, ImageNet only with its file -------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    for label, n in (("NORMAL", 40), ("PNEUMONIA", 60)):
        folder = tmp_path / "kermany" / "train" / label
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"person{i}_{label.lower()}.jpeg").write_bytes(b"")
    (tmp_path / "kermany" / "train" / "NORMAL" / ".DS_Store").write_bytes(b"")
    return tmp_path / "kermany"


@pytest.fixture
def no_imagenet(settings: Any, tmp_path: Path) -> None:
    settings.PNEUMO_IMAGENET_WEIGHTS_FILE = tmp_path / "absent" / "resnet50_notop.h5"


def progress(phase: int, epoch: int, images_per_second: float) -> TrainingProgress:
    return TrainingProgress(
        phase=phase,
        phase_name="",
        epoch=epoch,
        epochs=3,
        loss=0.5,
        val_loss=0.5,
        auc=0.8,
        val_auc=0.8,
        best_val_auc=0.8,
        seconds_per_epoch=12.0,
        images_per_second=images_per_second,
        eta_seconds=60.0,
    )


def test_without_earlier_runs_the_presets_say_no_estimate_yet_and_default_to_the_quick_run(
    staff_web: Client, no_imagenet: None
) -> None:
    page = staff_web.get(run_url("add")).content.decode()
    assert "Quick CPU run, 224 px, from scratch" in page and "Full run, 384 px, 15 + 20 epochs" in page
    assert page.count("no estimate yet: no earlier run has recorded its speed") == 2
    assert re.search(r'name="image_size" value="224"', page) and re.search(r'name="phase1_epochs" value="3"', page)
    assert '<option value="none" selected>' in page and 'value="imagenet"' not in page
    assert "ImageNet weights are not offered: no weights file" in page

    full = staff_web.get(run_url("add") + "?preset=full").content.decode()
    assert re.search(r'name="image_size" value="384"', full) and re.search(r'name="phase2_epochs" value="20"', full)
    assert '<option value="none" selected>' in full  # the full run falls back to from scratch without the file


def test_the_estimate_comes_from_the_pace_an_earlier_run_recorded(
    staff_web: Client, data_dir: Path, no_imagenet: None
) -> None:
    earlier = TrainingRun.objects.create(data_dir=str(data_dir), image_size=224, status=TrainingRun.Status.RUNNING)
    for phase, epoch, pace in ((1, 1, 8.0), (1, 2, 10.0), (1, 3, 12.0), (2, 1, 5.0)):
        training_run_record_progress(run_id=earlier.pk, progress=progress(phase, epoch, pace))
    earlier.refresh_from_db()
    assert [e["images_per_second"] for e in earlier.progress_log] == [8.0, 10.0, 12.0, 5.0]  # recorded from now on
    run_page = staff_web.get(run_url("change", earlier.pk)).content.decode()
    assert re.findall(r'class="lifecycle-num run-pace">([^<]*)<', run_page) == ["5.0", "12.0", "10.0", "8.0"]

    page = text(staff_web.get(run_url("add")).content.decode())
    # Quick: 100 images x (3 epochs / 10 img/s [median of phase 1] + 2 epochs / 5 img/s) = 70 s.
    assert (
        f"Estimated duration: at most about 1 min 10 s of training for 100 training images at 10.0 images/s "
        f"(run {earlier.pk})" in page
    )
    # Full, 384 px: the 224 px pace scaled by pixel count, 100 x (15 / 3.40 + 20 / 1.70) s = 26 min 56 s.
    assert "for 100 training images at 3.4 images/s" in page and "measured at 224 px and scaled by pixel count" in page
    assert "26 min 56 s" in page
    assert f"Estimates for the data folder {data_dir}" in page  # the last run's folder, prefilled


def test_imagenet_is_offered_only_when_the_weights_file_is_there(
    staff_web: Client, data_dir: Path, settings: Any, tmp_path: Path, no_imagenet: None
) -> None:
    form = {
        "data_dir": str(data_dir),
        "image_size": "384",
        "weights": "imagenet",
        "phase1_epochs": "15",
        "phase2_epochs": "20",
        "batch_size": "32",
        "target_sensitivity": "0.95",
        "version": "",
    }
    with mock.patch("diagnosis.tasks.training.training_run_task.delay") as delay:
        refused = staff_web.post(run_url("add") + "?preset=full", form)
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert not TrainingRun.objects.exists()
    delay.assert_not_called()

    weights = tmp_path / "keras" / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    weights.parent.mkdir()
    weights.write_bytes(b"HDF5 stand-in")
    settings.PNEUMO_IMAGENET_WEIGHTS_FILE = weights
    page = staff_web.get(run_url("add") + "?preset=full").content.decode()
    assert '<option value="imagenet" selected>ImageNet (ResNet50, ' in page
    with mock.patch("diagnosis.tasks.training.training_run_task.delay"):
        response = staff_web.post(run_url("add") + "?preset=full", form)
    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert run.weights == str(weights.resolve())  # the worker loads the file; it never tries to download
