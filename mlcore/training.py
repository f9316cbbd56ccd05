"""Two-phase training of the pneumonia classifier, ending in a validated model artifact.

Phase 1 trains the head with the ResNet50 base frozen; phase 2 fine-tunes base layers
from ``fine_tune_from_layer`` on at a small learning rate. Both phases stop early on
validation AUC and keep their best epoch. The model of the better phase is kept (a
fine-tuning run that never beats phase 1 must not replace it). The decision threshold
is then chosen on VALIDATION data for the target sensitivity, validation and test are
evaluated at that fixed threshold, and everything is saved as one artifact folder.

The run works in ``output_dir/.<version>.partial/`` and is renamed to
``output_dir/<version>/`` only when complete, so a half-written model is never found.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcore.artifact import Manifest, save_artifact
from mlcore.data import DatasetSplits, SplitFiles, class_weights, dataset_summary, discover_dataset, make_tf_dataset
from mlcore.evaluation import build_gradcam_examples, per_image_records
from mlcore.intended_use import default_intended_use
from mlcore.metrics import EvaluationReport, evaluate, threshold_for_sensitivity
from mlcore.training_config import TrainConfig
from mlcore.training_progress import (
    PHASE_NAMES,
    TrainingCancelled,
    TrainingProgress,
    finite_or_none,
    make_progress_callback,
)

if TYPE_CHECKING:  # pragma: no cover
    import keras

    from mlcore.config import PreprocessingConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingResult:
    """Outcome of :func:`train`."""

    artifact_dir: Path
    manifest: Manifest
    history: dict[str, Any]
    validation: EvaluationReport
    test: EvaluationReport | None


@dataclass(frozen=True)
class _Run:
    """What every phase needs (internal)."""

    config: TrainConfig
    train_ds: Any
    val_ds: Any
    class_weights: dict[int, float]
    n_train: int
    run_dir: Path
    progress: Callable[[TrainingProgress], None] | None
    should_stop: Callable[[], bool] | None


def _run_phase(model: keras.Model, phase: int, run: _Run) -> tuple[dict[str, list[float | None]], float | None]:
    """Compile and fit one phase; returns ``(history, best val AUC or None)``."""
    import keras

    config = run.config
    epochs = config.phase1_epochs if phase == 1 else config.phase2_epochs
    later = config.phase2_epochs if phase == 1 else 0
    lr = config.phase1_lr if phase == 1 else config.phase2_lr
    patience = config.phase1_patience if phase == 1 else config.phase2_patience
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=lr),
        loss="binary_crossentropy",
        metrics=[
            keras.metrics.AUC(name="auc"),
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )
    early = keras.callbacks.EarlyStopping(monitor="val_auc", mode="max", patience=patience, restore_best_weights=True)
    checkpoint = keras.callbacks.ModelCheckpoint(
        str(run.run_dir / "checkpoints" / f"phase{phase}_best.keras"),
        monitor="val_auc",
        mode="max",
        save_best_only=True,
    )
    reporter = make_progress_callback(phase, epochs, run.n_train, later, run.progress, run.should_stop)
    logger.info("phase %d (%s): up to %d epochs at lr %g", phase, PHASE_NAMES[phase], epochs, lr)
    history = model.fit(
        run.train_ds,
        validation_data=run.val_ds,
        epochs=epochs,
        class_weight=run.class_weights,
        callbacks=[early, checkpoint, reporter],
        verbose=0,
        shuffle=False,  # tf.data shuffles itself
    )
    if reporter.cancelled:
        raise TrainingCancelled(f"training cancelled during phase {phase}")
    logs = {key: [finite_or_none(v) for v in values] for key, values in history.history.items()}
    return logs, reporter.best


def _fit_phases(model: keras.Model, run: _Run) -> tuple[dict[str, Any], int, float | None]:
    """Phase 1, then phase 2 when configured; keep the better phase's best epoch.

    Returns:
        ``(history per phase, selected phase, its best val AUC)``.
    """
    from mlcore.model import set_base_trainable

    history: dict[str, Any] = {}
    set_base_trainable(model, trainable=False)
    history["phase1"], best1 = _run_phase(model, 1, run)
    if run.config.phase2_epochs == 0:
        return history, 1, best1
    phase1_weights = model.get_weights()  # best phase-1 epoch (restored by EarlyStopping)
    set_base_trainable(model, trainable=True, from_layer=run.config.fine_tune_from_layer)
    history["phase2"], best2 = _run_phase(model, 2, run)
    if best1 is not None and (best2 is None or best2 < best1):
        # Fine-tuning that never beats the head-only model must not replace it.
        logger.info("phase 2 best val AUC %s < phase 1 %s: keeping the phase-1 model", best2, best1)
        model.set_weights(phase1_weights)
        return history, 1, best1
    return history, 2, best2


def _prepare_run_dir(config: TrainConfig, version: str) -> tuple[Path, Path]:
    """Return ``(partial run folder, final artifact folder)``; refuse to overwrite."""
    output = Path(config.output_dir)
    final_dir = output / version
    if final_dir.exists():
        raise FileExistsError(f"artifact folder already exists: {final_dir}")
    run_dir = output / f".{version}.partial"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # leftover of a crashed run with the same version
    (run_dir / "checkpoints").mkdir(parents=True)
    return run_dir, final_dir


def _evaluate_and_plot(
    model: keras.Model,
    config: TrainConfig,
    splits: DatasetSplits,
    preprocessing: PreprocessingConfig,
    val_ds: Any,
    plots_dir: Path,
) -> tuple[float, EvaluationReport, EvaluationReport | None, dict[str, Any]]:
    """Choose the threshold on validation, evaluate validation (and test) at it, plot.

    Returns:
        ``(threshold, validation report, test report or None, evaluation documents)``.
    """
    from mlcore.plots import write_evaluation_plots

    # Threshold from validation data only; test is evaluated at that fixed threshold.
    y_val = np.asarray(splits.val.labels)
    s_val = model.predict(val_ds, verbose=0)[:, 0].astype(np.float64)
    threshold = threshold_for_sensitivity(y_val, s_val, config.target_sensitivity)
    validation = evaluate(y_val, s_val, threshold=threshold, n_bootstrap=config.n_bootstrap, seed=config.seed)
    named = [("validation", splits.val, s_val, validation)]
    test_report: EvaluationReport | None = None
    if splits.test is not None:
        test_ds = make_tf_dataset(
            splits.test.paths,
            splits.test.labels,
            preprocessing,
            training=False,
            batch_size=config.batch_size,
            seed=config.seed,
            cache="none",
        )
        s_test = model.predict(test_ds, verbose=0)[:, 0].astype(np.float64)
        test_report = evaluate(
            splits.test.labels, s_test, threshold=threshold, n_bootstrap=config.n_bootstrap, seed=config.seed
        )
        named.append(("test", splits.test, s_test, test_report))
    evaluations: dict[str, Any] = {}
    for name, split, scores, report in named:
        examples = build_gradcam_examples(model, preprocessing, split.paths, split.labels, scores, threshold)
        files = write_evaluation_plots(
            split.labels,
            scores,
            report,
            plots_dir,
            population=config.population,
            gradcam_examples=examples,
            title_suffix=f" ({name})",
            prefix=f"{name}_",
        )
        evaluations[name] = {
            "report": report.to_dict(),
            "plots": files,
            "per_image": per_image_records(split.paths, split.labels, scores, Path(splits.data_dir)),
        }
    return threshold, validation, test_report, evaluations


def train(
    config: TrainConfig,
    *,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train, calibrate the threshold on validation data, evaluate and save an artifact.

    Args:
        config: Run settings (validated here).
        progress: Called after every epoch with a :class:`TrainingProgress`.
        should_stop: Polled at every epoch end (and at most every 10 s within an epoch);
            True stops training and raises :class:`TrainingCancelled`.

    Returns:
        :class:`TrainingResult` with the artifact folder ``output_dir/<version>``.

    Raises:
        ValueError: Invalid config or dataset. FileExistsError: the version folder exists.
        mlcore.model.WeightsUnavailableError: Base weights unavailable.
        TrainingCancelled: Stopped by ``should_stop`` (the partial folder is removed).
    """
    import keras
    import tensorflow as tf

    from mlcore.config import PreprocessingConfig
    from mlcore.model import build_classifier
    from mlcore.plots import plot_training_history

    config.validate()
    started = time.perf_counter()
    version = config.resolved_version()
    run_dir, final_dir = _prepare_run_dir(config, version)
    keras.utils.set_random_seed(config.seed)
    splits = discover_dataset(
        config.data_dir, val_fraction=config.val_fraction, min_val_per_class=config.min_val_per_class, seed=config.seed
    )
    summary = dataset_summary(splits)
    logger.info("dataset: %s", summary["splits"])
    preprocessing = PreprocessingConfig(image_size=config.image_size)
    preprocessing.validate()
    weights = class_weights(splits.train.labels)

    def dataset(split: SplitFiles, *, training: bool) -> tf.data.Dataset:
        return make_tf_dataset(
            split.paths,
            split.labels,
            preprocessing,
            training=training,
            batch_size=config.batch_size,
            seed=config.seed,
            cache=config.cache,
        )

    run = _Run(
        config=config,
        train_ds=dataset(splits.train, training=True),
        val_ds=dataset(splits.val, training=False),
        class_weights=weights,
        n_train=len(splits.train),
        run_dir=run_dir,
        progress=progress,
        should_stop=should_stop,
    )
    model = build_classifier(image_size=config.image_size, weights=config.weights, seed=config.seed)
    try:
        history, selected, best = _fit_phases(model, run)
        if should_stop is not None and should_stop():
            raise TrainingCancelled("training cancelled before evaluation")
    except TrainingCancelled:
        shutil.rmtree(run_dir, ignore_errors=True)
        raise

    threshold, validation, test_report, evaluations = _evaluate_and_plot(
        model, config, splits, preprocessing, run.val_ds, run_dir / "plots"
    )
    plot_training_history(history, run_dir / "plots" / "training_history.png", population=config.population)
    # "Validated" needs enough validation images per class to measure the threshold at all.
    validated = min(validation.n_positive, validation.n_negative) >= config.min_val_per_class
    if not validated:
        logger.warning(
            "validation set too small (< %d per class): artifact marked validated=False", config.min_val_per_class
        )
    manifest = save_artifact(
        model,
        run_dir,
        version=version,
        preprocessing=preprocessing.to_dict(),
        threshold=threshold,
        threshold_method={
            "method": "target_sensitivity",
            "target": config.target_sensitivity,
            "on": "validation",
            "n": validation.n,
            "val_source": splits.val_source,
            "achieved_sensitivity": validation.sensitivity,
            "achieved_specificity": validation.specificity,
        },
        validated=validated,
        validation_metrics=validation.to_dict(),
        test_metrics=test_report.to_dict() if test_report else None,
        dataset=summary,
        training={
            "config": config.to_dict(),
            "history": history,
            "selected_phase": selected,
            "best_val_auc_during_training": best,
            "class_weights": {str(k): v for k, v in weights.items()},
            "duration_s": round(time.perf_counter() - started, 1),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        population=config.population,
        # Recorded for the Kermany data (the default population); another data set's ranges are not known here.
        intended_use=default_intended_use(config.population),
        evaluations=evaluations,
    )
    run_dir.rename(final_dir)
    logger.info(
        "training finished in %.0f s: artifact %s, threshold %.4f", time.perf_counter() - started, final_dir, threshold
    )
    return TrainingResult(final_dir, manifest, history, validation, test_report)
