"""Forms of the model lifecycle admin pages: they parse input; the services decide and refuse with a reason."""

from __future__ import annotations

from pathlib import PurePath

from django import forms

from diagnosis import ml
from diagnosis.exceptions import ModelVersionError


class TrainingRunForm(forms.Form):
    data_dir = forms.CharField(
        label="Data folder",
        max_length=500,
        widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="Absolute path on the training worker with train/ (and optionally val/, test/), "
        "each holding NORMAL/ and PNEUMONIA/.",
    )
    image_size = forms.IntegerField(label="Image size (px)", initial=384, min_value=32, max_value=1024)
    weights = forms.CharField(
        label="Base weights",
        initial="imagenet",
        max_length=500,
        widget=forms.TextInput(attrs={"class": "lifecycle-path"}),
        help_text="imagenet, none (random), or the path of a local ResNet50 no-top weights file "
        "(a worker without internet cannot download ImageNet weights).",
    )
    phase1_epochs = forms.IntegerField(label="Phase 1 epochs (base frozen)", initial=15, min_value=1, max_value=500)
    phase2_epochs = forms.IntegerField(label="Phase 2 epochs (fine-tuning)", initial=20, min_value=0, max_value=500)
    batch_size = forms.IntegerField(initial=32, min_value=1, max_value=512)
    target_sensitivity = forms.FloatField(
        initial=0.95,
        min_value=ml.TARGET_SENSITIVITY_MIN,
        max_value=0.999,
        help_text="The threshold is chosen on validation data to reach this sensitivity.",
    )
    version = forms.CharField(required=False, max_length=100, help_text="Optional; default: a timestamp.")


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
