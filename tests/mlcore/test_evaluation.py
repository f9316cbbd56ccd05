"""mlcore.evaluation.evaluate_folder and the evaluation plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("keras")

from mlcore.evaluation import evaluate_folder, find_labelled_folder, select_examples
from mlcore.metrics import evaluate
from mlcore.plots import write_evaluation_plots
from tests.mlcore.helpers_ml import demo_artifact, write_class_folder

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_evaluate_folder_writes_report_and_plots(tmp_path_factory, tmp_path):
    artifact = demo_artifact(tmp_path_factory, 32)
    data = tmp_path / "data"
    write_class_folder(data / "test", n_per_class=5, seed=3)  # data_dir/test/{NORMAL,PNEUMONIA}
    out = tmp_path / "out"
    report = evaluate_folder(artifact, data, out, n_bootstrap=50, population="synthetic test images")
    assert (report.n, report.n_positive, report.n_negative) == (10, 5, 5)
    assert report.threshold == 0.5  # the manifest's
    document = json.loads((out / "report.json").read_text())
    assert document["model_version"] == "demo-untrained" and document["model_validated"] is False
    assert document["population"] == "synthetic test images"
    assert document["report"]["auc_roc"] == pytest.approx(report.auc_roc)
    assert len(document["per_image"]) == 10 and document["per_image"][0]["file"].startswith("NORMAL/")
    for name in ("roc", "precision_recall", "confusion_matrix", "threshold_tradeoff", "calibration", "gradcam"):
        assert (out / document["plots"][name]).read_bytes().startswith(PNG_MAGIC), name

    again = evaluate_folder(artifact, data / "test", tmp_path / "out2", threshold=0.0, n_bootstrap=0)
    assert again.sensitivity == 1.0 and again.specificity == 0.0


def test_find_labelled_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_labelled_folder(tmp_path)


def test_select_examples_picks_each_kind():
    labels = [1, 1, 0, 0, 1, 0]
    scores = [0.9, 0.2, 0.1, 0.8, 0.7, 0.4]
    # TP (0.9, 0.7) most confident first, TN (0.1, 0.4), FP (0.8), FN (0.2)
    assert select_examples(labels, scores, 0.5) == [0, 4, 2, 5, 3, 1]


def test_plots_without_gradcam_and_population_footnote(tmp_path):
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(20, int), np.ones(20, int)]
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1)
    report = evaluate(y, s, threshold=0.5, n_bootstrap=20)
    files = write_evaluation_plots(
        y, s, report, tmp_path, population="Kermany pediatric (ages 1–5) data", prefix="validation_"
    )
    assert set(files) == {"roc", "precision_recall", "confusion_matrix", "threshold_tradeoff", "calibration"}
    assert all(name.startswith("validation_") for name in files.values())
    assert all((tmp_path / name).stat().st_size > 1000 for name in files.values())
