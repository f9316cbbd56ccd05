"""Forms of the model lifecycle admin pages: they parse input; the services decide and refuse with a reason."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Any

from django import forms
from django.conf import settings

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError

IMAGENET = "imagenet"


def imagenet_weights_file() -> Path | None:
    """The ResNet50 ImageNet weights file when it is there (PNEUMO_IMAGENET_WEIGHTS_FILE); a site without internet
    cannot download it, so the form offers ImageNet only then."""
    path = Path(settings.PNEUMO_IMAGENET_WEIGHTS_FILE)
    return path if path.is_file() else None


class TrainingRunForm(forms.Form):
    data_dir = forms.CharField(
        label="Data folder",
        max_length=500,
        widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="Absolute path on the training worker with train/ (and optionally val/, test/), "
        "each holding NORMAL/ and PNEUMONIA/.",
    )
    image_size = forms.IntegerField(label="Image size (px)", initial=224, min_value=32, max_value=1024)
    weights = forms.ChoiceField(
        label="Base weights",
        initial="none",
        help_text="Another weights file: manage.py train_model --weights PATH.",
    )
    phase1_epochs = forms.IntegerField(label="Phase 1 epochs (base frozen)", initial=3, min_value=1, max_value=500)
    phase2_epochs = forms.IntegerField(label="Phase 2 epochs (fine-tuning)", initial=2, min_value=0, max_value=500)
    batch_size = forms.IntegerField(initial=16, min_value=1, max_value=512)
    target_sensitivity = forms.FloatField(
        initial=0.95,
        min_value=ml.TARGET_SENSITIVITY_MIN,
        max_value=0.999,
        help_text="The threshold is chosen on validation data to reach this sensitivity.",
    )
    version = forms.CharField(required=False, max_length=100, help_text="Optional; default: a timestamp.")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.imagenet_file = imagenet_weights_file()
        choices = [("none", "None: random initialisation (from scratch)")]
        if self.imagenet_file is not None:
            choices.append((IMAGENET, f"ImageNet (ResNet50, {self.imagenet_file.name})"))
        else:
            self.fields["weights"].help_text = (
                "ImageNet weights are not offered: no weights file at PNEUMO_IMAGENET_WEIGHTS_FILE "
                f"({settings.PNEUMO_IMAGENET_WEIGHTS_FILE}), and this site may not download it. "
                + self.fields["weights"].help_text
            )
        self.fields["weights"].choices = choices  # type: ignore[attr-defined]  # a ChoiceField

    def clean_weights(self) -> str:
        # The worker loads the file by its path: it never tries to download ImageNet weights.
        value = str(self.cleaned_data["weights"])
        return str(self.imagenet_file) if value == IMAGENET and self.imagenet_file is not None else value


class RegisterForm(forms.Form):
    path = forms.CharField(
        max_length=500,
        label="Artifact path",
        widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="Absolute path of an artifact folder (model.keras + manifest.json) or of a notebook .h5 file.",
    )
    version = forms.CharField(
        max_length=100,
        required=False,
        help_text="Optional; default: the version in the manifest (or the .h5 file name).",
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3, "class": "lifecycle-path"}))

    def clean_path(self) -> str:
        # Relative to what? The web process and the worker that may import it have different working folders.
        path = str(self.cleaned_data["path"]).strip()
        if not PurePath(path).is_absolute():
            raise forms.ValidationError("Give an absolute path.")
        return path


def parse_target_sensitivity(raw: str | None) -> float:
    """The target sensitivity of a lifecycle action's POST, checked against the one rule (``ModelVersionError``)."""
    try:
        return ml.check_target_sensitivity(float(raw or ""))
    except ValueError:
        raise ModelVersionError(
            f"The target sensitivity must be a number in [{ml.TARGET_SENSITIVITY_MIN:g}, "
            f"{ml.TARGET_SENSITIVITY_MAX:g}), such as 0.95. Received: {raw!r}"
        ) from None


def parse_traffic_shares(values: dict[str, str]) -> dict[str, int]:
    """``{"v3": "90", "v4": "10", "v5": "0"}`` → ``{"v3": 90, "v4": 10}``: whole, non-negative percents."""
    shares: dict[str, int] = {}
    for name, raw in values.items():
        try:
            share = int(raw)
        except ValueError:
            raise ModelVersionError(
                f"The share of {name} must be a whole number of percent. Received: {raw!r}"
            ) from None
        if share < 0:
            raise ModelVersionError(f"The share of {name} cannot be negative. Received: {share}")
        if share:
            shares[name] = share
    return shares
