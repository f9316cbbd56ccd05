"""Progress of a training run, epoch by epoch, and its cancellation: the Keras callback and what it reports.

Kept apart from :mod:`mlcore.training` so the reporting contract (``TrainingProgress``) reads on its own; Keras is
imported only when a callback is made.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger("mlcore.training")  # the training log, as before the split

PHASE_NAMES = {1: "head (base frozen)", 2: "fine-tuning"}
_STOP_POLL_SECONDS = 10.0  # should_stop may hit a database: poll within epochs at most this often


class TrainingCancelled(Exception):
    """``should_stop`` returned True; no artifact was saved."""


@dataclass(frozen=True)
class TrainingProgress:
    """Progress after one epoch.

    Attributes:
        phase: 1 or 2. phase_name: Human-readable phase.
        epoch: Epoch just finished (1-based). epochs: Maximum epochs of this phase.
        loss, val_loss, auc, val_auc: Epoch metrics (None when not logged).
        best_val_auc: Best validation AUC of this phase so far.
        seconds_per_epoch: Wall time of this epoch (training + validation).
        images_per_second: Training images / training time of this epoch.
        eta_seconds: Upper-bound estimate for the remaining epochs of all phases at the
            current pace (early stopping usually ends sooner).
    """

    phase: int
    phase_name: str
    epoch: int
    epochs: int
    loss: float | None
    val_loss: float | None
    auc: float | None
    val_auc: float | None
    best_val_auc: float | None
    seconds_per_epoch: float
    images_per_second: float
    eta_seconds: float


def finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def make_progress_callback(
    phase: int,
    epochs: int,
    n_train: int,
    later_epochs: int,
    progress: Callable[[TrainingProgress], None] | None,
    should_stop: Callable[[], bool] | None,
) -> Any:
    """Keras callback for progress reports and cancellation (Keras imported lazily)."""
    import keras

    class _Progress(keras.callbacks.Callback):  # type: ignore[misc]  # Keras ships no type information
        def __init__(self) -> None:
            super().__init__()
            self.cancelled = False
            self.best: float | None = None
            self.durations: list[float] = []
            self._last_poll = time.monotonic()
            self._epoch_start = 0.0
            self._train_end: float | None = None

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self._epoch_start = time.perf_counter()
            self._train_end = None

        def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:  # validation: training part is over
            self._train_end = time.perf_counter()

        def _poll(self) -> None:
            if should_stop is not None and should_stop():
                self.cancelled = True
                self.model.stop_training = True

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if should_stop is not None and time.monotonic() - self._last_poll >= _STOP_POLL_SECONDS:
                self._last_poll = time.monotonic()
                self._poll()

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            logs = logs or {}
            now = time.perf_counter()
            seconds = now - self._epoch_start
            train_seconds = (self._train_end or now) - self._epoch_start
            self.durations.append(seconds)
            val_auc = finite_or_none(logs["val_auc"]) if "val_auc" in logs else None
            if val_auc is not None and (self.best is None or val_auc > self.best):
                self.best = val_auc
            remaining = (epochs - epoch - 1) + later_epochs
            # The first epoch of a phase includes graph tracing; later ones show the pace.
            pace = float(np.mean(self.durations[1:] if len(self.durations) > 1 else self.durations))
            report = TrainingProgress(
                phase=phase,
                phase_name=PHASE_NAMES[phase],
                epoch=epoch + 1,
                epochs=epochs,
                loss=finite_or_none(logs["loss"]) if "loss" in logs else None,
                val_loss=finite_or_none(logs["val_loss"]) if "val_loss" in logs else None,
                auc=finite_or_none(logs["auc"]) if "auc" in logs else None,
                val_auc=val_auc,
                best_val_auc=self.best,
                seconds_per_epoch=seconds,
                images_per_second=n_train / train_seconds if train_seconds > 0 else 0.0,
                eta_seconds=remaining * pace,
            )
            logger.info(
                "phase %d epoch %d/%d: loss %s val_auc %s (%.1f s, %.1f img/s, ETA <= %.0f s)",
                phase,
                report.epoch,
                epochs,
                report.loss,
                val_auc,
                seconds,
                report.images_per_second,
                report.eta_seconds,
            )
            if progress is not None:
                progress(report)
            self._poll()  # checked at every epoch end, whatever the poll interval

    return _Progress()
