"""Dataset discovery, patient-grouped validation split and the tf.data input pipeline.

Layout: ``data_dir/{train,val,test}/{NORMAL,PNEUMONIA}/*.{jpeg,jpg,png,dcm}`` (the
Kermany "Chest X-Ray Images (Pneumonia)" layout). Labels: 1 = PNEUMONIA, 0 = NORMAL.

Several Kermany images can come from one patient (``person1000_bacteria_2931.jpeg`` and
``person1000_virus_...``). A validation split that puts images of one patient on both
sides measures memorisation of the patient, not generalisation, and would give an
optimistic threshold. Carved validation splits are therefore grouped by patient.

The input pipeline decodes and preprocesses every image with
:func:`mlcore.preprocessing.preprocess_file`, the same code that serves uploads, so the
model is trained on exactly the pixels it will see in production.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import keras
    import tensorflow as tf

    from mlcore.config import PreprocessingConfig

logger = logging.getLogger(__name__)

CLASS_NAMES = ("NORMAL", "PNEUMONIA")
IMAGE_SUFFIXES = frozenset({".jpeg", ".jpg", ".png", ".dcm"})

_PERSON = re.compile(r"^(person\d+)_", re.IGNORECASE)
_IM = re.compile(r"^((?:NORMAL2-)?IM-\d+)-", re.IGNORECASE)


@dataclass(frozen=True)
class SplitFiles:
    """Files of one split: absolute paths and labels (1 = PNEUMONIA), same order."""

    paths: tuple[str, ...]
    labels: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def count(self, label: int) -> int:
        """Number of images with ``label``."""
        return sum(1 for y in self.labels if y == label)


@dataclass(frozen=True)
class DatasetSplits:
    """Result of :func:`discover_dataset`.

    Attributes:
        data_dir: Absolute dataset root.
        train, val: Always present, both classes in each.
        test: None when the dataset has no ``test`` folder.
        val_source: ``"val folder"`` or how validation was carved, e.g.
            ``"carved from train (patient-grouped, 15%)"``.
    """

    data_dir: str
    train: SplitFiles
    val: SplitFiles
    test: SplitFiles | None
    val_source: str


def patient_id_from_filename(name: str | os.PathLike[str]) -> str:
    """Return the Kermany patient id of a file name (path or bare name).

    ``person1000_bacteria_2931.jpeg`` -> ``"person1000"``; ``IM-0133-0001.jpeg`` ->
    ``"IM-0133"``; ``NORMAL2-IM-1427-0001.jpeg`` -> ``"NORMAL2-IM-1427"``. Names in no
    known pattern return their stem, i.e. every such file is its own patient.
    """
    base = Path(name).name
    for pattern in (_PERSON, _IM):
        match = pattern.match(base)
        if match:
            return match.group(1)
    return Path(base).stem


def _list_images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def _read_split(root: Path) -> SplitFiles | None:
    if not root.is_dir():
        return None
    paths: list[str] = []
    labels: list[int] = []
    for label, class_name in enumerate(CLASS_NAMES):
        files = _list_images(root / class_name)
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return SplitFiles(tuple(paths), tuple(labels)) if paths else None


def grouped_split(split: SplitFiles, *, fraction: float, seed: int) -> tuple[SplitFiles, SplitFiles]:
    """Split into ``(rest, held_out)`` by patient, stratified by class.

    Patients are grouped per class; in each class whole patients are drawn in a seeded
    random order until ``fraction`` of that class's images is held out, so the class
    ratio is kept and no patient is on both sides. A patient with images of both
    classes (not seen in Kermany) counts as PNEUMONIA for drawing and stays whole.

    Raises:
        ValueError: A class has fewer than two patients (it cannot be on both sides).
    """
    labels = np.asarray(split.labels)
    groups: dict[str, list[int]] = defaultdict(list)
    for index, path in enumerate(split.paths):
        groups[patient_id_from_filename(path)].append(index)
    by_class: dict[int, list[str]] = defaultdict(list)
    for patient in sorted(groups):
        by_class[int(labels[groups[patient]].max())].append(patient)

    rng = np.random.default_rng(seed)
    held: set[int] = set()
    for label in (0, 1):
        patients = by_class[label]
        if len(patients) < 2:
            raise ValueError(
                f"cannot carve a patient-grouped validation split: class {CLASS_NAMES[label]} "
                f"has {len(patients)} patient(s) in train"
            )
        wanted = fraction * sum(len(groups[p]) for p in patients)
        taken = 0
        for drawn, position in enumerate(rng.permutation(len(patients))):
            # At least one patient held out, at least one left for training.
            if (taken >= wanted and drawn >= 1) or drawn == len(patients) - 1:
                break
            held.update(groups[patients[position]])
            taken += len(groups[patients[position]])

    def subset(keep: Callable[[int], bool]) -> SplitFiles:
        index = [i for i in range(len(split)) if keep(i)]
        return SplitFiles(tuple(split.paths[i] for i in index), tuple(split.labels[i] for i in index))

    return subset(lambda i: i not in held), subset(lambda i: i in held)


def discover_dataset(
    data_dir: str | os.PathLike[str],
    *,
    val_fraction: float = 0.15,
    min_val_per_class: int = 20,
    seed: int = 42,
) -> DatasetSplits:
    """Find the images of a ``{train,val,test}/{NORMAL,PNEUMONIA}`` dataset.

    Files are sorted by name within each class. When ``val`` is missing or has fewer
    than ``min_val_per_class`` images in a class (AUC on the public 8 + 8 val is mostly
    noise), a validation split is carved from train (plus the small val's images, which
    are otherwise wasted) by :func:`grouped_split`.

    Raises:
        FileNotFoundError: ``data_dir`` or ``data_dir/train`` is missing or has no images.
        ValueError: A class is missing from train, or the split cannot be carved.
    """
    root = Path(data_dir).resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"dataset folder not found: {root}")
    train = _read_split(root / "train")
    if train is None:
        raise FileNotFoundError(f"no images in {root / 'train'}/{{NORMAL,PNEUMONIA}}")
    for label, class_name in enumerate(CLASS_NAMES):
        if train.count(label) == 0:
            raise ValueError(f"train split has no {class_name} images")
    val = _read_split(root / "val")
    test = _read_split(root / "test")

    if val is not None and all(val.count(label) >= min_val_per_class for label in (0, 1)):
        return DatasetSplits(str(root), train, val, test, "val folder")

    pool = train
    source = "train"
    if val is not None:
        pool = SplitFiles(train.paths + val.paths, train.labels + val.labels)
        source = f"train + {len(val)} images of the too small val folder"
    rest, held = grouped_split(pool, fraction=val_fraction, seed=seed)
    val_source = f"carved from {source} (patient-grouped, {val_fraction:.0%})"
    if min(held.count(0), held.count(1)) < min_val_per_class:
        logger.warning(
            "carved validation split has only %d NORMAL / %d PNEUMONIA images (< %d): "
            "thresholds chosen on it are noisy",
            held.count(0),
            held.count(1),
            min_val_per_class,
        )
    return DatasetSplits(str(root), rest, held, test, val_source)


def dataset_summary(splits: DatasetSplits) -> dict[str, Any]:
    """Counts and fingerprints of a dataset, for the manifest.

    Returns:
        ``{"data_dir", "val_source", "splits": {name: {"NORMAL", "PNEUMONIA", "total",
        "patients"}}, "patient_overlap": {"train_val", "train_test", "val_test"},
        "files_sha256", "split_sha256"}``. ``files_sha256`` hashes the sorted list of
        relative file paths (which files were used); ``split_sha256`` hashes
        ``split<TAB>path`` lines (which side each file was on, carved split included).
    """
    root = Path(splits.data_dir)
    named = {"train": splits.train, "val": splits.val}
    if splits.test is not None:
        named["test"] = splits.test
    patients = {name: {patient_id_from_filename(p) for p in s.paths} for name, s in named.items()}
    summary: dict[str, Any] = {"data_dir": str(root), "val_source": splits.val_source, "splits": {}}
    lines: list[str] = []
    for name, split in named.items():
        summary["splits"][name] = {
            "NORMAL": split.count(0),
            "PNEUMONIA": split.count(1),
            "total": len(split),
            "patients": len(patients[name]),
        }
        lines += [f"{name}\t{Path(p).relative_to(root).as_posix()}" for p in split.paths]
    overlap = {}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        if a in patients and b in patients:
            overlap[f"{a}_{b}"] = len(patients[a] & patients[b])
    summary["patient_overlap"] = overlap
    relative = sorted(line.split("\t", 1)[1] for line in lines)
    summary["files_sha256"] = hashlib.sha256("\n".join(relative).encode()).hexdigest()
    summary["split_sha256"] = hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()
    return summary


def class_weights(labels: Sequence[int]) -> dict[int, float]:
    """Balanced class weights ``n / (2 * n_class)`` (sklearn's ``"balanced"``).

    Raises:
        ValueError: A class is absent.
    """
    y = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(y, minlength=2)
    if y.size == 0 or counts.size != 2 or np.any(counts == 0):
        raise ValueError(f"both classes are needed for class weights, got counts {counts.tolist()}")
    return {label: float(y.size / (2 * counts[label])) for label in (0, 1)}


def make_augmenter(seed: int) -> keras.Sequential:
    """Keras layers of the spec's training augmentation, applied to ``(N, S, S, 3)`` [0, 1].

    Rotation +-12 deg, translation +-15 %, zoom +-15 %, horizontal flip, brightness +-15 %
    (additive, on the [0, 1] range). ``fill_mode="nearest"`` as in Keras'
    ImageDataGenerator used by the notebook; reflection would invent anatomy at the edges.
    """
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomRotation(12 / 360, fill_mode="nearest", seed=seed),
            keras.layers.RandomTranslation(0.15, 0.15, fill_mode="nearest", seed=seed + 1),
            keras.layers.RandomZoom(0.15, 0.15, fill_mode="nearest", seed=seed + 2),
            keras.layers.RandomFlip("horizontal", seed=seed + 3),
            keras.layers.RandomBrightness(0.15, value_range=(0.0, 1.0), seed=seed + 4),
        ],
        name="augmentation",
    )


def make_tf_dataset(
    paths: Sequence[str],
    labels: Sequence[int],
    config: PreprocessingConfig,
    *,
    batch_size: int,
    training: bool,
    seed: int,
    cache: str = "memory",
) -> tf.data.Dataset:
    """Build a batched ``tf.data.Dataset`` of ``(images, labels)``.

    Args:
        paths: Image files.
        labels: 1 = PNEUMONIA, 0 = NORMAL, same order as ``paths``.
        config: Preprocessing settings (same object used at inference).
        batch_size: Images per batch.
        training: Shuffle each epoch and augment; otherwise keep file order (so predictions
            line up with ``labels``) and never augment.
        seed: Shuffle and augmentation seed.
        cache: ``"memory"``, ``"none"`` or a directory for a file cache.

    Returns:
        Dataset of ``(float32 (B, S, S, C) in [0, 1], float32 (B,))``.

    Preprocessing errors stop the pipeline with the file name in the message.
    """
    import tensorflow as tf

    from mlcore.preprocessing import preprocess_file

    if len(paths) != len(labels):
        raise ValueError(f"paths and labels differ in length: {len(paths)} != {len(labels)}")
    if not paths:
        raise ValueError("no images")
    size, channels = int(config.image_size), int(config.channels)

    def load(path: bytes) -> np.ndarray:
        name = path.decode()
        try:
            return np.asarray(preprocess_file(name, config), dtype=np.float32)
        except Exception as exc:  # re-raised with the file name; TF would lose it
            raise ValueError(f"cannot preprocess {name}: {exc}") from exc

    def load_tf(path: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.numpy_function(load, [path], tf.float32, stateful=False)
        image.set_shape((size, size, channels))
        return image, label

    ds = tf.data.Dataset.from_tensor_slices(
        (tf.constant([str(p) for p in paths]), tf.constant(np.asarray(labels, dtype=np.float32)))
    )
    ds = ds.map(load_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    # Cache preprocessed, un-augmented images: CLAHE + decoding run once, augmentation
    # (after the cache) is fresh every epoch.
    if cache == "memory":
        ds = ds.cache()
    elif cache != "none":
        # One file per (file list, preprocessing): a stale cache from other settings or
        # another split must never be replayed.
        key = hashlib.sha256(repr((list(map(str, paths)), config.to_dict())).encode()).hexdigest()[:16]
        os.makedirs(cache, exist_ok=True)
        ds = ds.cache(os.path.join(cache, f"tfdata_{key}"))
    if training:
        # After the cache, or every epoch would replay the first epoch's order.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if training:
        augmenter = make_augmenter(seed)

        def augment(images: tf.Tensor, batch_labels: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            return tf.clip_by_value(augmenter(images, training=True), 0.0, 1.0), batch_labels

        ds = ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
