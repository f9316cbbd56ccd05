"""mlcore.data: discovery, patient-grouped split, tf.data parity with preprocess_file."""

from __future__ import annotations

import numpy as np
import pytest

from mlcore.config import PreprocessingConfig
from mlcore.data import (
    SplitFiles,
    class_weights,
    dataset_summary,
    discover_dataset,
    grouped_split,
    make_tf_dataset,
    patient_id_from_filename,
)
from mlcore.preprocessing import preprocess_file
from tests.mlcore.helpers_ml import write_dataset


@pytest.mark.parametrize(
    ("name", "patient"),
    [
        ("person1000_bacteria_2931.jpeg", "person1000"),
        ("person1_virus_6.jpeg", "person1"),
        ("/data/train/PNEUMONIA/person78_bacteria_378.jpeg", "person78"),
        ("IM-0133-0001.jpeg", "IM-0133"),
        ("NORMAL2-IM-1427-0001.jpeg", "NORMAL2-IM-1427"),
        ("NORMAL2-IM-0423-0001-0002.jpeg", "NORMAL2-IM-0423"),
        ("scan_17.png", "scan_17"),
    ],
)
def test_patient_id_from_filename(name, patient):
    assert patient_id_from_filename(name) == patient


def _split(n_patients_normal=30, n_patients_sick=40) -> SplitFiles:
    paths, labels = [], []
    for i in range(n_patients_normal):
        paths.append(f"/d/NORMAL/IM-{i:04d}-0001.jpeg")
        labels.append(0)
    for i in range(n_patients_sick):
        for j in range(1 + i % 3):  # 1-3 images per patient
            paths.append(f"/d/PNEUMONIA/person{i}_bacteria_{i * 10 + j}.jpeg")
            labels.append(1)
    return SplitFiles(tuple(paths), tuple(labels))


def test_grouped_split_has_no_patient_overlap_and_keeps_classes():
    split = _split()
    rest, held = grouped_split(split, fraction=0.15, seed=3)
    assert len(rest) + len(held) == len(split)
    assert set(rest.paths).isdisjoint(held.paths)
    rest_patients = {patient_id_from_filename(p) for p in rest.paths}
    held_patients = {patient_id_from_filename(p) for p in held.paths}
    assert rest_patients.isdisjoint(held_patients)
    for label in (0, 1):
        assert held.count(label) > 0 and rest.count(label) > 0
        assert held.count(label) / split.count(label) == pytest.approx(0.15, abs=0.07)
    assert grouped_split(split, fraction=0.15, seed=3) == (rest, held)  # deterministic
    assert grouped_split(split, fraction=0.15, seed=4) != (rest, held)


def test_grouped_split_needs_two_patients_per_class():
    split = SplitFiles(("IM-0001-0001.png", "person1_virus_1.png", "person2_virus_2.png"), (0, 1, 1))
    with pytest.raises(ValueError, match="NORMAL"):
        grouped_split(split, fraction=0.2, seed=0)


def test_discover_carves_when_val_missing(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=12, n_test=3)
    splits = discover_dataset(root, min_val_per_class=20, seed=0)
    assert splits.val_source == "carved from train (patient-grouped, 15%)"
    assert splits.test is not None and len(splits.test) == 6
    assert splits.val.count(0) >= 1 and splits.val.count(1) >= 1
    assert len(splits.train) + len(splits.val) == 24
    train_patients = {patient_id_from_filename(p) for p in splits.train.paths}
    assert train_patients.isdisjoint(patient_id_from_filename(p) for p in splits.val.paths)
    assert list(splits.test.paths) == sorted(splits.test.paths[:3]) + sorted(splits.test.paths[3:])
    assert splits.test.labels == (0, 0, 0, 1, 1, 1)


def test_discover_carves_when_val_too_small_and_uses_val_when_big_enough(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=12, n_val=2)
    small = discover_dataset(root, min_val_per_class=20)
    assert small.val_source.startswith("carved from train + 4 images of the too small val folder")
    assert len(small.train) + len(small.val) == 28
    ok = discover_dataset(root, min_val_per_class=2)
    assert ok.val_source == "val folder"
    assert len(ok.val) == 4 and len(ok.train) == 24


def test_discover_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        discover_dataset(tmp_path / "missing")
    (tmp_path / "empty" / "train" / "NORMAL").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):
        discover_dataset(tmp_path / "empty")


def test_dataset_summary(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=12, n_test=2)
    summary = dataset_summary(discover_dataset(root, seed=0))
    assert summary["splits"]["test"] == {"NORMAL": 2, "PNEUMONIA": 2, "total": 4, "patients": 3}
    assert summary["splits"]["train"]["total"] + summary["splits"]["val"]["total"] == 24
    assert summary["patient_overlap"]["train_val"] == 0
    other_split = dataset_summary(discover_dataset(root, seed=1))
    assert other_split["files_sha256"] == summary["files_sha256"]
    assert other_split["split_sha256"] != summary["split_sha256"]
    (root / "test" / "NORMAL" / "IM-2000-0001.png").unlink()
    assert dataset_summary(discover_dataset(root, seed=0))["files_sha256"] != summary["files_sha256"]


def test_class_weights():
    weights = class_weights([0] * 25 + [1] * 75)
    assert weights == pytest.approx({0: 2.0, 1: 100 / 150})
    with pytest.raises(ValueError):
        class_weights([1, 1, 1])


def _all_train_files(root):
    paths = sorted(str(p) for p in (root / "train").rglob("*.png"))
    return paths, [int("PNEUMONIA" in p) for p in paths]


def test_eval_dataset_equals_preprocess_file(tmp_path):
    """Safety property: the training pipeline feeds exactly what inference computes."""
    root = write_dataset(tmp_path / "ds", n_train=3)
    paths, labels = _all_train_files(root)
    config = PreprocessingConfig(image_size=32)
    ds = make_tf_dataset(paths, labels, config, batch_size=2, training=False, seed=0)
    images = np.concatenate([x.numpy() for x, _ in ds])
    got_labels = np.concatenate([y.numpy() for _, y in ds])
    assert images.shape == (len(paths), 32, 32, 3) and images.dtype == np.float32
    np.testing.assert_array_equal(got_labels, labels)  # order kept
    for image, path in zip(images, paths, strict=True):
        np.testing.assert_allclose(image, preprocess_file(path, config), atol=1e-6)


def test_training_dataset_augments_and_stays_in_range(tmp_path):
    root = write_dataset(tmp_path / "ds", n_train=4)
    paths, labels = _all_train_files(root)
    config = PreprocessingConfig(image_size=32)
    ds = make_tf_dataset(paths, labels, config, batch_size=8, training=True, seed=0)
    first = [(x.numpy(), y.numpy()) for x, y in ds]
    second = [(x.numpy(), y.numpy()) for x, y in ds]
    x1, y1 = first[0]
    assert x1.shape == (8, 32, 32, 3) and x1.min() >= 0.0 and x1.max() <= 1.0
    assert sorted(y1.tolist()) == sorted(labels)
    assert not np.allclose(x1, second[0][0])  # fresh augmentation / order each epoch
    clean = np.stack([preprocess_file(p, config) for p in paths])
    assert not any(np.allclose(x, c, atol=1e-6) for x in x1 for c in clean)  # every image augmented


def test_preprocessing_error_names_the_file(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    ds = make_tf_dataset([str(bad)], [0], PreprocessingConfig(image_size=32), batch_size=1, training=False, seed=0)
    with pytest.raises(Exception, match="bad.png"):
        list(ds)
