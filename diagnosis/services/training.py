"""Training a new model version: the checks shared by ``train_model`` and admin training runs, and the CLI path.

Both ways in take the same settings and refuse the same bad values with the same messages; the rules themselves
(target sensitivity, version names, weights) come from mlcore through the gateway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth.models import User

from diagnosis import ml
from diagnosis.exceptions import InvalidInputError, ModelVersionError
from diagnosis.models import ModelVersion, TrainingRun
from diagnosis.services.model_registration import model_version_register
from diagnosis.services.model_versions import model_version_activate

_UNFINISHED_OR_DONE = (TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING, TrainingRun.Status.SUCCEEDED)


@dataclass(frozen=True)
class TrainingOptions:
    """Checked settings of one training: absolute paths, a free version name, weights as mlcore takes them."""

    data_dir: str
    output_dir: str
    image_size: int
    weights: str  # "imagenet", "none" or an absolute file path (as stored on a TrainingRun)
    phase1_epochs: int
    phase2_epochs: int
    batch_size: int
    target_sensitivity: float
    version: str
    seed: int = 42

    def train_config(self) -> ml.TrainConfig:
        return ml.train_config(
            data_dir=self.data_dir,
            output_dir=self.output_dir,
            image_size=self.image_size,
            weights=ml.parse_weights(self.weights),
            batch_size=self.batch_size,
            phase1_epochs=self.phase1_epochs,
            phase2_epochs=self.phase2_epochs,
            target_sensitivity=self.target_sensitivity,
            version=self.version,
            seed=self.seed,
        )


def _clean_weights(weights: str) -> str:
    try:
        parsed = ml.parse_weights((weights or "").strip())
    except ValueError:
        raise InvalidInputError(
            f"Weights must be imagenet, none or the path of a weights file. Received: {weights!r}"
        ) from None
    if parsed is None:
        return "none"  # stored as the word, as an admin typed it: a run's row reads "none", not an empty cell
    return parsed if parsed == "imagenet" else str(Path(parsed).resolve())


def _clean_version(version: str, output_dir: Path) -> str:
    name = (version or "").strip() or ml.default_version_name()
    if not ml.is_valid_version_name(name):
        raise InvalidInputError(
            f"Version must be a plain name (letters, digits, '.', '_' or '-'; no '/'). Received: {name!r}"
        )
    if ModelVersion.objects.filter(version=name).exists():
        raise InvalidInputError(f"A model version named {name!r} is already registered.")
    if TrainingRun.objects.filter(version=name, status__in=_UNFINISHED_OR_DONE).exists():
        raise InvalidInputError(f"Another training run already produces version {name!r}.")
    if (output_dir / name).exists():
        raise InvalidInputError(f"{output_dir / name} already exists; choose another version.")
    return name


def _check_numbers(
    *, image_size: int, phase1_epochs: int, phase2_epochs: int, batch_size: int, target_sensitivity: float
) -> None:
    if not 32 <= image_size <= 1024:
        raise InvalidInputError(f"Image size must be between 32 and 1024 pixels. Received: {image_size}")
    if not 1 <= phase1_epochs <= 500 or not 0 <= phase2_epochs <= 500:
        raise InvalidInputError("Epochs: phase 1 needs 1 to 500, phase 2 0 to 500 (0 skips fine-tuning).")
    if not 1 <= batch_size <= 512:
        raise InvalidInputError(f"Batch size must be between 1 and 512. Received: {batch_size}")
    try:
        ml.check_target_sensitivity(target_sensitivity)
    except ValueError:
        raise InvalidInputError(
            f"Target sensitivity must be in [{ml.TARGET_SENSITIVITY_MIN:g}, {ml.TARGET_SENSITIVITY_MAX:g}). "
            f"Received: {target_sensitivity}"
        ) from None


def training_options_clean(
    *,
    data_dir: str,
    image_size: int,
    weights: str,
    phase1_epochs: int,
    phase2_epochs: int,
    batch_size: int,
    target_sensitivity: float,
    version: str,
    output_dir: str | Path | None = None,
    seed: int = 42,
) -> TrainingOptions:
    """Check every setting of a training before anything is written (``InvalidInputError`` says which and why)."""
    folder = Path((data_dir or "").strip()).expanduser()
    if not folder.is_absolute() or not (folder / "train").is_dir():
        raise InvalidInputError(
            f"The data folder must be an absolute path with a train/ folder (train/NORMAL, train/PNEUMONIA). "
            f"Received: {str(data_dir)!r}"
        )
    _check_numbers(
        image_size=image_size,
        phase1_epochs=phase1_epochs,
        phase2_epochs=phase2_epochs,
        batch_size=batch_size,
        target_sensitivity=target_sensitivity,
    )
    output = Path(output_dir).resolve() if output_dir else ml.model_storage_dir().resolve()
    return TrainingOptions(
        data_dir=str(folder.resolve()),
        output_dir=str(output),
        image_size=image_size,
        weights=_clean_weights(weights),
        phase1_epochs=phase1_epochs,
        phase2_epochs=phase2_epochs,
        batch_size=batch_size,
        target_sensitivity=target_sensitivity,
        version=_clean_version(version, output),
        seed=seed,
    )


def model_version_train(
    *,
    options: TrainingOptions,
    activate: bool = False,
    progress: Callable[[ml.TrainingProgress], None] | None = None,
    actor: User | None = None,
) -> tuple[ModelVersion, ml.TrainingResult]:
    """Train in this process (the ``train_model`` command: TensorFlow), register the artifact, maybe activate it.

    Raises ``ModelVersionError`` when mlcore refuses the data or the settings, or registering fails.
    """
    try:
        result = ml.train(options.train_config(), progress=progress)
    except (RuntimeError, OSError, ValueError) as exc:
        raise ModelVersionError(str(exc)) from exc
    model_version = model_version_register(path=result.artifact_dir, version=options.version, actor=actor)
    if activate:
        model_version = model_version_activate(model_version=model_version, actor=actor)
    return model_version, result
