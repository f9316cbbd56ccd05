"""How long a training run will take, from the pace earlier runs measured (issue 10).

Since issue 10 every epoch's progress entry records ``images_per_second`` (training images over training time,
validation excluded). A new run's estimate takes the median pace of the most recent run that measured one, per
phase (phase 2 trains more layers and is slower), scaled by pixel count when that run used another image size
(compute grows with the pixels of the input). Runs from before issue 10 recorded no pace: then there is no estimate.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

from diagnosis import ml
from diagnosis.models import TrainingRun

RECENT_RUNS = 20  # runs looked at for a measured pace, newest first


@dataclass(frozen=True)
class Pace:
    """Measured training speed: images per second in each phase (None: that phase was never measured)."""

    run_id: int
    image_size: int
    phase1: float
    phase2: float | None

    def at(self, image_size: int) -> Pace:
        factor = (self.image_size / image_size) ** 2
        return Pace(
            run_id=self.run_id,
            image_size=image_size,
            phase1=self.phase1 * factor,
            phase2=None if self.phase2 is None else self.phase2 * factor,
        )


@dataclass(frozen=True)
class Estimate:
    seconds: float | None
    train_images: int | None
    pace: Pace | None  # the pace used, already scaled to the requested image size
    measured_at: int | None  # image size of the run that measured it
    reason: str  # why there is no estimate ("" when there is one)


def _median_pace(run: TrainingRun, phase: int) -> float | None:
    paces = [
        float(entry["images_per_second"])
        for entry in run.progress_log
        if entry.get("phase") == phase and (entry.get("images_per_second") or 0) > 0
    ]
    return statistics.median(paces) if paces else None


def training_pace_measured(*, image_size: int) -> tuple[Pace | None, int | None]:
    """The newest measured pace (same image size preferred) scaled to ``image_size``; the size it was measured at."""
    runs = list(TrainingRun.objects.exclude(progress_log=[]).order_by("-created_at")[:RECENT_RUNS])
    measured = []
    for run in runs:
        phase1 = _median_pace(run, 1)
        if phase1 is not None:
            measured.append(Pace(run_id=run.pk, image_size=run.image_size, phase1=phase1, phase2=_median_pace(run, 2)))
    if not measured:
        return None, None
    chosen = next((p for p in measured if p.image_size == image_size), measured[0])
    return chosen.at(image_size), chosen.image_size


def training_duration_estimate(
    *, data_dir: str | Path | None, image_size: int, phase1_epochs: int, phase2_epochs: int
) -> Estimate:
    """Upper bound of a run's training time (every epoch run; early stopping usually ends sooner)."""
    pace, measured_at = training_pace_measured(image_size=image_size)
    if pace is None:
        return Estimate(None, None, None, None, "no estimate yet: no earlier run has recorded its speed")
    images = ml.count_training_images(data_dir) if data_dir else None
    if not images:
        return Estimate(None, images, pace, measured_at, "no estimate: give a data folder with training images")
    phase2 = pace.phase2 or pace.phase1
    seconds = images * (phase1_epochs / pace.phase1 + phase2_epochs / phase2)
    return Estimate(seconds, images, pace, measured_at, "")
