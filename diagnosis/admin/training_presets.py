"""Presets of the training form (issue 10) and their estimated durations, as the form's page shows them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from diagnosis.admin import display
from diagnosis.admin.forms import IMAGENET
from diagnosis.selectors.training_estimates import Estimate, training_duration_estimate


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    image_size: int
    weights: str  # "none" or IMAGENET (only when the weights file is there)
    phase1_epochs: int
    phase2_epochs: int
    batch_size: int

    def initial(self, *, imagenet_available: bool) -> dict[str, Any]:
        weights = self.weights if self.weights != IMAGENET or imagenet_available else "none"
        return {
            "image_size": self.image_size,
            "weights": weights,
            "phase1_epochs": self.phase1_epochs,
            "phase2_epochs": self.phase2_epochs,
            "batch_size": self.batch_size,
        }


PRESETS = (
    # A first model on 2 CPU cores: from scratch, since a site without internet has no ImageNet weights. Short runs
    # swing (PITFALLS: AUC 0.50 → 0.93 → 0.51 by epoch); the best checkpoint by validation AUC is kept.
    Preset("quick", "Quick CPU run, 224 px, from scratch", 224, "none", 3, 2, 16),
    # The specification's run (../shared/reference/model-training.md): ResNet50 from ImageNet at 384 px.
    Preset("full", "Full run, 384 px, 15 + 20 epochs (ImageNet weights when available)", 384, IMAGENET, 15, 20, 32),
)
DEFAULT_PRESET = "quick"


def preset_get(key: str | None) -> Preset:
    return next((p for p in PRESETS if p.key == key), next(p for p in PRESETS if p.key == DEFAULT_PRESET))


def estimate_text(estimate: Estimate) -> str:
    if estimate.seconds is None or estimate.pace is None:
        return estimate.reason
    pace = estimate.pace
    measured = f"{pace.phase1:.1f} images/s (run {pace.run_id}"
    if estimate.measured_at != pace.image_size:
        measured += f", measured at {estimate.measured_at} px and scaled by pixel count"
    measured += ")"
    return (
        f"at most about {display.format_duration(estimate.seconds)} of training for {estimate.train_images} "
        f"training images at {measured}; early stopping usually ends sooner, validation adds to it"
    )


def preset_rows(*, data_dir: str | None, imagenet_available: bool) -> list[dict[str, Any]]:
    rows = []
    for preset in PRESETS:
        initial = preset.initial(imagenet_available=imagenet_available)
        estimate = training_duration_estimate(
            data_dir=data_dir,
            image_size=preset.image_size,
            phase1_epochs=preset.phase1_epochs,
            phase2_epochs=preset.phase2_epochs,
        )
        weights = "ImageNet" if initial["weights"] == IMAGENET else "from scratch"
        rows.append(
            {
                "key": preset.key,
                "label": preset.label,
                "summary": f"{preset.image_size} px, {weights}, {preset.phase1_epochs} + {preset.phase2_epochs} "
                f"epochs, batch {preset.batch_size}",
                "estimate": estimate_text(estimate),
                "has_estimate": estimate.seconds is not None,
            }
        )
    return rows
