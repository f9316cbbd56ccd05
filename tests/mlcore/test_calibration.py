"""mlcore.calibration: the threshold for a target sensitivity, on scores and on a labelled folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from mlcore.calibration import calibrate_on_folder, calibrate_scores, find_calibration_folder
from tests.mlcore.helpers_ml import demo_artifact, write_class_folder


def test_calibrate_scores_picks_the_highest_threshold_reaching_the_target() -> None:
    # 10 positives: at threshold 0.6 nine are caught (0.9), at 0.35 all ten (1.0).
    y = [1] * 10 + [0] * 10
    scores = [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.62, 0.6, 0.35] + [
        0.1,
        0.2,
        0.3,
        0.4,
        0.5,
        0.15,
        0.25,
        0.05,
        0.33,
        0.61,
    ]
    result = calibrate_scores(y, scores, 0.9)
    assert result.threshold == pytest.approx(0.6)
    tn, fp, fn, tp = confusion_matrix(y, np.asarray(scores) >= result.threshold).ravel()
    assert result.achieved_sensitivity == pytest.approx(tp / (tp + fn)) == pytest.approx(0.9)
    assert result.specificity == pytest.approx(tn / (tn + fp)) == pytest.approx(0.9)
    assert result.auc == pytest.approx(roc_auc_score(y, scores))
    assert (result.n, result.n_positive, result.n_negative) == (20, 10, 10)
    assert calibrate_scores(y, scores, 1.0).threshold == pytest.approx(0.35)


def test_calibrate_scores_refuses_a_single_class() -> None:
    with pytest.raises(ValueError, match="single class"):
        calibrate_scores([1, 1, 1], [0.2, 0.4, 0.9], 0.95)


def test_calibration_folder_is_never_the_test_split(tmp_path: Path) -> None:
    write_class_folder(tmp_path / "test", n_per_class=1, seed=0)
    with pytest.raises(FileNotFoundError, match="val/NORMAL"):
        find_calibration_folder(tmp_path)
    write_class_folder(tmp_path / "val", n_per_class=1, seed=0)
    assert find_calibration_folder(tmp_path) == tmp_path / "val"


@pytest.mark.slow
def test_calibrate_on_folder_scores_every_image_with_the_artifact(tmp_path: Path, tmp_path_factory) -> None:
    from mlcore.artifact import load_artifact
    from mlcore.config import PreprocessingConfig
    from mlcore.evaluation import list_labelled_files, predict_files

    artifact = demo_artifact(tmp_path_factory, image_size=32)
    write_class_folder(tmp_path / "labelled", n_per_class=4, seed=5)
    result = calibrate_on_folder(artifact, tmp_path / "labelled", 0.75)

    paths, labels = list_labelled_files(tmp_path / "labelled")
    loaded = load_artifact(artifact)
    scores = predict_files(loaded.model, paths, PreprocessingConfig.from_dict(loaded.manifest.preprocessing))
    np.testing.assert_allclose(result.scores, scores, rtol=1e-5)
    positives = np.asarray(scores)[np.asarray(labels) == 1]
    # The highest threshold that still catches 3 of the 4 positives is the 3rd highest positive score.
    assert result.threshold == pytest.approx(np.sort(positives)[-3], rel=1e-6)
    assert (result.n, result.n_positive, result.n_negative) == (8, 4, 4)
    assert result.source == str((tmp_path / "labelled").resolve())


@pytest.mark.parametrize("target", [0.3, 1.0])
def test_calibrate_on_folder_refuses_a_target_outside_the_rule_before_any_work(tmp_path: Path, target: float) -> None:
    # Neither the artifact nor the folder exists: the target is checked first.
    with pytest.raises(ValueError, match="Target sensitivity must be in"):
        calibrate_on_folder(tmp_path / "no-artifact", tmp_path / "no-data", target)
