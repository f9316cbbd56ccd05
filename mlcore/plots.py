"""Evaluation plots written as PNG files.

Figures are built with ``matplotlib.figure.Figure`` and rendered by the Agg canvas
directly: no pyplot global state (safe in Celery threads) and the host process's
backend is left alone. Every figure carries a footnote naming the population the
numbers come from, because a model validated on Kermany pediatric (ages 1-5) images
says nothing about adults.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from mlcore.metrics import EvaluationReport

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

_NO_POPULATION = "population not stated: metrics hold only for data like the evaluation set"


@dataclass(frozen=True)
class GradCamExample:
    """One tile of the Grad-CAM grid.

    Attributes:
        image: ``(H, W)`` uint8 original grayscale image.
        heatmap: ``(h, w)`` float32 in [0, 1].
        probability: Model P(PNEUMONIA).
        label: True label (1 = PNEUMONIA, 0 = NORMAL) or None when unknown.
        title: Short caption, e.g. the file name.
    """

    image: np.ndarray
    heatmap: np.ndarray
    probability: float
    label: int | None = None
    title: str = ""


def _new_figure(figsize: tuple[float, float] = (6.0, 5.0)) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=100)
    FigureCanvasAgg(fig)
    return fig


def _finish(fig: Figure, path: Path, population: str) -> None:
    fig.text(0.01, 0.01, f"Data: {population or _NO_POPULATION}", fontsize=7, ha="left", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, format="png")


def plot_roc(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    report: EvaluationReport,
    path: Path,
    *,
    population: str,
    title_suffix: str = "",
) -> None:
    """ROC curve with the operating point of ``report.threshold``."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(y_true, y_score)
    fig = _new_figure()
    ax = fig.add_subplot()
    label = f"AUC = {report.auc_roc:.3f}"
    if "auc_roc" in report.ci95:
        lo, hi = report.ci95["auc_roc"]
        label += f" (95% CI {lo:.3f}-{hi:.3f})"
    ax.plot(fpr, tpr, lw=2, label=label)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.plot(
        [1 - report.specificity],
        [report.sensitivity],
        "ro",
        label=f"threshold {report.threshold:.3f}: sens {report.sensitivity:.2f}, spec {report.specificity:.2f}",
    )
    ax.set(
        xlabel="1 - specificity (false positive rate)",
        ylabel="sensitivity (true positive rate)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"ROC curve{title_suffix}",
    )
    ax.legend(loc="lower right", fontsize=8)
    _finish(fig, path, population)


def plot_precision_recall(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    report: EvaluationReport,
    path: Path,
    *,
    population: str,
    title_suffix: str = "",
) -> None:
    """Precision-recall curve; the prevalence line is the chance level."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, _ = precision_recall_curve(y_true, y_score)
    fig = _new_figure()
    ax = fig.add_subplot()
    ax.step(recall, precision, where="post", lw=2, label=f"AP = {report.pr_auc:.3f}")
    prevalence = report.n_positive / report.n
    ax.axhline(prevalence, color="k", ls="--", lw=1, label=f"prevalence {prevalence:.2f}")
    ax.plot([report.sensitivity], [report.precision], "ro", label=f"threshold {report.threshold:.3f}")
    ax.set(
        xlabel="recall (sensitivity)",
        ylabel="precision (PPV)",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Precision-recall{title_suffix}",
    )
    ax.legend(loc="lower left", fontsize=8)
    _finish(fig, path, population)


def plot_confusion_matrix(report: EvaluationReport, path: Path, *, population: str, title_suffix: str = "") -> None:
    """2 x 2 confusion matrix (rows: truth, columns: prediction) with counts and row %."""
    cm = report.confusion_matrix
    matrix = np.array([[cm["tn"], cm["fp"]], [cm["fn"], cm["tp"]]], dtype=float)
    fig = _new_figure((5.0, 4.5))
    ax = fig.add_subplot()
    ax.imshow(matrix, cmap="Blues")
    rows = matrix.sum(axis=1, keepdims=True)
    for i in range(2):
        for j in range(2):
            pct = 100 * matrix[i, j] / rows[i, 0] if rows[i, 0] else 0.0
            color = "white" if matrix[i, j] > matrix.max() / 2 else "black"
            ax.text(j, i, f"{int(matrix[i, j])}\n({pct:.1f}%)", ha="center", va="center", color=color)
    ax.set(
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["NORMAL", "PNEUMONIA"],
        yticklabels=["NORMAL", "PNEUMONIA"],
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix @ {report.threshold:.3f}{title_suffix}",
    )
    _finish(fig, path, population)


def plot_threshold_tradeoff(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    report: EvaluationReport,
    path: Path,
    *,
    population: str,
    title_suffix: str = "",
) -> None:
    """Sensitivity and specificity as functions of the threshold."""
    from sklearn.metrics import roc_curve

    fpr, tpr, thresholds = roc_curve(y_true, y_score, drop_intermediate=False)
    finite = np.isfinite(thresholds)
    fig = _new_figure((6.5, 4.5))
    ax = fig.add_subplot()
    ax.plot(thresholds[finite], tpr[finite], label="sensitivity", drawstyle="steps-post")
    ax.plot(thresholds[finite], 1 - fpr[finite], label="specificity", drawstyle="steps-post")
    ax.axvline(report.threshold, color="r", ls="--", lw=1, label=f"chosen {report.threshold:.3f}")
    ax.set(
        xlabel="threshold on P(PNEUMONIA)",
        ylabel="rate",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Threshold trade-off{title_suffix}",
    )
    ax.legend(loc="center left", fontsize=8)
    _finish(fig, path, population)


def plot_calibration(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    path: Path,
    *,
    population: str,
    title_suffix: str = "",
    n_bins: int = 10,
) -> None:
    """Reliability diagram (observed fraction of PNEUMONIA per predicted-probability bin)."""
    from sklearn.calibration import calibration_curve

    scores = np.clip(np.asarray(y_score, dtype=float), 0.0, 1.0)
    frac_pos, mean_pred = calibration_curve(y_true, scores, n_bins=n_bins, strategy="uniform")
    fig = _new_figure((5.5, 5.0))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    ax.plot(mean_pred, frac_pos, "o-", label="model")
    ax.set(
        xlabel="mean predicted P(PNEUMONIA)",
        ylabel="observed fraction PNEUMONIA",
        xlim=(0, 1),
        ylim=(0, 1.01),
        title=f"Calibration{title_suffix}",
    )
    ax.legend(loc="upper left", fontsize=8)
    _finish(fig, path, population)


def plot_training_history(history: dict[str, dict[str, list[float]]], path: Path, *, population: str) -> None:
    """Loss and validation AUC per epoch for each phase (``{"phase1": {...}, ...}``)."""
    fig = _new_figure((9.0, 4.0))
    ax_loss, ax_auc = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    offset = 0
    for phase, logs in history.items():
        epochs = np.arange(offset + 1, offset + len(logs.get("loss", [])) + 1)
        for key, ax in (("loss", ax_loss), ("val_loss", ax_loss), ("auc", ax_auc), ("val_auc", ax_auc)):
            if logs.get(key):
                ax.plot(epochs, logs[key], marker=".", label=f"{phase} {key}")
        offset += len(epochs)
    ax_loss.set(xlabel="epoch", ylabel="loss", title="Loss")
    ax_auc.set(xlabel="epoch", ylabel="AUC", title="AUC")
    for ax in (ax_loss, ax_auc):
        ax.legend(fontsize=7)
    _finish(fig, path, population)


def plot_gradcam_grid(
    examples: Sequence[GradCamExample],
    path: Path,
    *,
    population: str,
    threshold: float | None = None,
    columns: int = 4,
) -> None:
    """Grid of Grad-CAM overlays at the images' original aspect ratios."""
    from mlcore.gradcam import overlay_heatmap

    if not examples:
        raise ValueError("no Grad-CAM examples")
    columns = max(1, min(columns, len(examples)))
    rows = math.ceil(len(examples) / columns)
    fig = _new_figure((3.2 * columns, 3.4 * rows + 0.4))
    names = {0: "NORMAL", 1: "PNEUMONIA", None: "unknown"}
    for index, example in enumerate(examples):
        ax = fig.add_subplot(rows, columns, index + 1)
        ax.imshow(overlay_heatmap(example.image, example.heatmap))
        caption = f"p={example.probability:.2f} true={names[example.label]}"
        if threshold is not None and example.label is not None:
            correct = (example.probability >= threshold) == bool(example.label)
            caption += " ok" if correct else " WRONG"
        ax.set_title(f"{example.title[:28]}\n{caption}", fontsize=8)
        ax.axis("off")
    fig.suptitle("Grad-CAM: regions that raised P(PNEUMONIA)", fontsize=10)
    _finish(fig, path, population)


def write_evaluation_plots(
    y_true: npt.ArrayLike,
    y_score: npt.ArrayLike,
    report: EvaluationReport,
    out_dir: str | Path,
    *,
    population: str = "",
    gradcam_examples: Sequence[GradCamExample] | None = None,
    title_suffix: str = "",
    prefix: str = "",
) -> dict[str, str]:
    """Write the standard evaluation plots into ``out_dir``.

    Args:
        y_true: ``(N,)`` labels in {0, 1}.
        y_score: ``(N,)`` P(PNEUMONIA).
        report: :func:`mlcore.metrics.evaluate` result for the same data.
        out_dir: Folder (created if missing).
        population: Who the images come from, e.g. "Kermany pediatric (ages 1-5) data";
            printed on every figure.
        gradcam_examples: Optional tiles for ``gradcam.png``.
        title_suffix: Appended to every title, e.g. " (validation)".
        prefix: File name prefix, e.g. ``"validation_"``.

    Returns:
        ``{plot name: file name}`` (file names relative to ``out_dir``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    y_true = np.asarray(y_true).astype(int)
    y_score = np.asarray(y_score, dtype=float)
    common: dict[str, Any] = {"population": population, "title_suffix": title_suffix}
    files: dict[str, str] = {}

    def target(name: str) -> Path:
        files[name] = f"{prefix}{name}.png"
        return out / files[name]

    plot_roc(y_true, y_score, report, target("roc"), **common)
    plot_precision_recall(y_true, y_score, report, target("precision_recall"), **common)
    plot_confusion_matrix(report, target("confusion_matrix"), **common)
    plot_threshold_tradeoff(y_true, y_score, report, target("threshold_tradeoff"), **common)
    plot_calibration(y_true, y_score, target("calibration"), **common)
    if gradcam_examples:
        plot_gradcam_grid(gradcam_examples, target("gradcam"), population=population, threshold=report.threshold)
    return files
