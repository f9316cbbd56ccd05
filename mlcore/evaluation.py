"""Evaluate a saved model artifact on any labelled ``{NORMAL,PNEUMONIA}`` folder.

Images go through :func:`mlcore.preprocessing.preprocess_file` with the artifact's own
preprocessing settings, the same path as training and serving. The helpers for
predictions and Grad-CAM example grids are shared with :mod:`mlcore.training`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from mlcore.data import CLASS_NAMES, IMAGE_SUFFIXES
from mlcore.metrics import EvaluationReport, evaluate
from mlcore.plots import GradCamExample, write_evaluation_plots

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from mlcore.config import PreprocessingConfig

logger = logging.getLogger(__name__)

#: Scores as a list or as the array a model returns.
Scores = Sequence[float] | npt.NDArray[np.floating[Any]]


class ImageRecord(TypedDict):
    """One image of an evaluation, as saved in its JSON document."""

    file: str
    label: int
    probability: float


def find_labelled_folder(data_dir: str | os.PathLike[str], *, split: str = "test") -> Path:
    """Return the folder holding ``NORMAL/`` and ``PNEUMONIA/``: ``data_dir`` itself or ``data_dir/<split>``.

    Raises:
        FileNotFoundError: Neither layout is present.
    """
    root = Path(data_dir)
    for candidate in (root, root / split):
        if all((candidate / name).is_dir() for name in CLASS_NAMES):
            return candidate
    raise FileNotFoundError(f"{root} has neither NORMAL/ and PNEUMONIA/ nor {split}/NORMAL/ and {split}/PNEUMONIA/")


def list_labelled_files(folder: Path) -> tuple[list[str], list[int]]:
    """Sorted image files of ``folder/{NORMAL,PNEUMONIA}`` and labels (1 = PNEUMONIA)."""
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(CLASS_NAMES):
        files = sorted(
            p
            for p in (folder / name).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
        )
        paths += [str(p) for p in files]
        labels += [label] * len(files)
    return paths, labels


def predict_files(
    model: keras.Model, paths: Sequence[str], config: PreprocessingConfig, *, batch_size: int = 16
) -> np.ndarray:
    """Return ``(N,)`` float32 P(PNEUMONIA) for image files, in order.

    Raises:
        mlcore.errors.ImageError: A file cannot be decoded (named in the message).
    """
    from mlcore.preprocessing import preprocess_file

    scores: list[np.ndarray] = []
    for start in range(0, len(paths), batch_size):
        chunk = paths[start : start + batch_size]
        batch = np.stack([preprocess_file(p, config) for p in chunk]).astype(np.float32, copy=False)
        scores.append(np.asarray(model(batch, training=False), dtype=np.float32)[:, 0])
    return np.concatenate(scores) if scores else np.zeros((0,), np.float32)


def select_examples(labels: Sequence[int], scores: Scores, threshold: float, *, per_kind: int = 2) -> list[int]:
    """Pick indices for a Grad-CAM grid: the most confident true positives and negatives
    and the worst false positives and negatives (the cases a reviewer should look at)."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=float)
    pred = s >= threshold
    kinds = [
        (y == 1) & pred,  # TP, most confident first
        (y == 0) & ~pred,  # TN
        (y == 0) & pred,  # FP, highest score first
        (y == 1) & ~pred,  # FN, lowest score first
    ]
    keys = [-s, s, -s, s]
    chosen: list[int] = []
    for mask, key in zip(kinds, keys, strict=True):
        index = np.flatnonzero(mask)
        chosen += index[np.argsort(key[index], kind="stable")][:per_kind].tolist()
    return chosen


def build_gradcam_examples(
    model: keras.Model,
    config: PreprocessingConfig,
    paths: Sequence[str],
    labels: Sequence[int],
    scores: Scores,
    threshold: float,
    *,
    per_kind: int = 2,
) -> list[GradCamExample]:
    """Grad-CAM tiles for :func:`select_examples`, overlaid on the original images."""
    from mlcore.gradcam import predict_with_gradcam
    from mlcore.imaging import load_image_file
    from mlcore.preprocessing import preprocess_file

    indices = select_examples(labels, scores, threshold, per_kind=per_kind)
    if not indices:
        return []
    batch = np.stack([preprocess_file(paths[i], config) for i in indices]).astype(np.float32, copy=False)
    probabilities, heatmaps = predict_with_gradcam(model, batch)
    return [
        GradCamExample(
            image=load_image_file(paths[i]).pixels,
            heatmap=heatmap,
            probability=float(probability),
            label=int(labels[i]),
            title=Path(paths[i]).name,
        )
        for i, probability, heatmap in zip(indices, probabilities, heatmaps, strict=True)
    ]


def per_image_records(paths: Sequence[str], labels: Sequence[int], scores: Scores, root: Path) -> list[ImageRecord]:
    """``[{"file", "label", "probability"}]`` with paths relative to ``root`` where possible."""
    records: list[ImageRecord] = []
    for path, label, score in zip(paths, labels, scores, strict=True):
        try:
            name = Path(path).resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            name = str(path)
        records.append({"file": name, "label": int(label), "probability": float(score)})
    return records


def evaluate_folder(
    artifact_dir: str | os.PathLike[str],
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    threshold: float | None = None,
    population: str | None = None,
    n_bootstrap: int = 1000,
    batch_size: int = 16,
    seed: int = 0,
) -> EvaluationReport:
    """Evaluate an artifact on a labelled folder; write ``report.json`` and plots.

    Args:
        artifact_dir: Model artifact folder (verified by :func:`mlcore.artifact.load_artifact`).
        data_dir: Folder with ``NORMAL/`` and ``PNEUMONIA/``, or with ``test/NORMAL`` etc.
        out_dir: Output folder (created): ``report.json``, ``*.png`` including ``gradcam.png``.
        threshold: Decision threshold; defaults to the manifest's.
        population: Who the evaluation images come from (printed on every plot and saved
            in the report); defaults to "unspecified" plus the training population.
        n_bootstrap: Bootstrap replicates for the 95 % intervals.
        batch_size: Images per forward pass.
        seed: Bootstrap seed.

    Returns:
        The :class:`EvaluationReport`.

    Raises:
        FileNotFoundError: No labelled folder. ValueError: a class is empty.
        mlcore.errors.ArtifactError: Invalid artifact. mlcore.errors.ImageError: bad image.
    """
    from mlcore.artifact import load_artifact
    from mlcore.config import PreprocessingConfig

    artifact = load_artifact(artifact_dir)
    manifest = artifact.manifest
    config = PreprocessingConfig.from_dict(manifest.preprocessing)
    folder = find_labelled_folder(data_dir)
    paths, labels = list_labelled_files(folder)
    thr = manifest.threshold if threshold is None else float(threshold)
    if population is None:
        population = f"unspecified evaluation data (model trained on: {manifest.population})"
    logger.info("Evaluating model %s on %d images in %s", manifest.version, len(paths), folder)

    scores = predict_files(artifact.model, paths, config, batch_size=batch_size)
    report = evaluate(labels, scores, threshold=thr, n_bootstrap=n_bootstrap, seed=seed)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    examples = build_gradcam_examples(artifact.model, config, paths, labels, scores, thr)
    plots = write_evaluation_plots(
        labels,
        scores,
        report,
        out,
        population=population,
        gradcam_examples=examples,
        title_suffix=f" ({folder.name})",
    )
    document: dict[str, Any] = {
        "model_version": manifest.version,
        "weights_sha256": manifest.weights_sha256,
        "model_validated": manifest.validated,
        "threshold_source": "manifest" if threshold is None else "argument",
        "data_dir": str(folder.resolve()),
        "population": population,
        "report": report.to_dict(),
        "plots": plots,
        "per_image": per_image_records(paths, labels, scores, folder),
    }
    (out / "report.json").write_text(json.dumps(document, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return report
