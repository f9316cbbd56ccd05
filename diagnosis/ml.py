"""The one gateway between Django and ``mlcore``: nothing else under diagnosis/ or pneumoweb/ imports mlcore.

What passes through here: upload inspection, prediction, calibration, training, evaluation, ``.h5`` import,
statistics, the weights check, the rules shared with mlcore (:mod:`mlcore.rules`), and the mapping of mlcore's
errors to domain errors (:func:`_domain_errors`, the only place that knows mlcore's exception types).

The web process imports this module: every name used at module level is cheap (``mlcore.rules``, ``mlcore.errors``,
``mlcore.stats``, ``mlcore.upload_check`` and ``mlcore.artifact`` import no TensorFlow). Anything that touches
TensorFlow (prediction, calibration on a folder, training, evaluation, ``.h5`` import) imports its mlcore module
inside the function and is only ever called by workers and management commands.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

from diagnosis.exceptions import (
    ApplicationError,
    ModelArtifactError,
    ModelVersionError,
    TrainingCancelledError,
    UnreadableImageError,
    UnsupportedMediaError,
    UploadTooLargeError,
)
from mlcore import artifact as _artifact
from mlcore import intended_use as _intended_use
from mlcore import rules as _rules
from mlcore import stats as _stats
from mlcore import upload_check as _upload_check
from mlcore.errors import ArtifactError, ImageError, ImageTooLargeError, UnsupportedFormatError

if TYPE_CHECKING:
    from diagnosis.models import ModelVersion

    # Re-exported for annotations elsewhere in diagnosis (``from diagnosis.ml import InferenceResult``).
    from mlcore.artifact import Manifest as Manifest
    from mlcore.calibration import CalibrationResult as CalibrationResult
    from mlcore.inference import InferenceResult as InferenceResult
    from mlcore.inference import Predictor as Predictor
    from mlcore.metrics import EvaluationReport as EvaluationReport
    from mlcore.training import TrainingResult as TrainingResult
    from mlcore.training_config import TrainConfig as TrainConfig
    from mlcore.training_progress import TrainingProgress as TrainingProgress
    from mlcore.upload_check import UploadInfo as UploadInfo

logger = logging.getLogger(__name__)

# --- Rules shared with mlcore (defined once in mlcore.rules) -----------------------------------------------------
TARGET_SENSITIVITY_MIN = _rules.TARGET_SENSITIVITY_MIN
TARGET_SENSITIVITY_MAX = _rules.TARGET_SENSITIVITY_MAX
check_target_sensitivity = _rules.check_target_sensitivity
is_valid_version_name = _rules.is_valid_version_name
default_version_name = _rules.default_version_name
is_h5_path = _rules.is_h5_path
parse_weights = _rules.parse_weights

# --- Statistics for live performance (pure NumPy) ----------------------------------------------------------------
mcnemar_exact = _stats.mcnemar_exact
population_stability_index = _stats.population_stability_index
roc_auc = _stats.roc_auc
wilson_interval = _stats.wilson_interval


def _domain_error(exc: Exception) -> ApplicationError:
    """The domain error for one of mlcore's refusals, keeping mlcore's message (callers add their context)."""
    if isinstance(exc, ArtifactError):
        return ModelArtifactError(str(exc))
    if isinstance(exc, UnsupportedFormatError):
        return UnsupportedMediaError(str(exc))
    if isinstance(exc, ImageTooLargeError):
        return UploadTooLargeError(str(exc))
    if isinstance(exc, ImageError):  # a ValueError: checked before the generic case below
        return UnreadableImageError(str(exc))
    return ModelVersionError(str(exc))  # OSError / ValueError of a lifecycle operation (bad folder, bad config)


@contextmanager
def _domain_errors() -> Iterator[None]:
    """Map ``ArtifactError``, ``OSError`` and ``ValueError`` (``ImageError`` included) raised inside."""
    try:
        yield
    except (ArtifactError, OSError, ValueError) as exc:
        raise _domain_error(exc) from exc


# --- Uploads -----------------------------------------------------------------------------------------------------


def inspect_upload(data: bytes, *, max_pixels: int) -> UploadInfo:
    """Format, header dimensions and DICOM structure of an upload, without decoding pixels (safe in the web process).

    Raises ``UnsupportedMediaError`` (415), ``UploadTooLargeError`` (413) or ``InvalidUploadError`` (400).
    """
    try:
        return _upload_check.inspect_upload(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise _domain_error(exc) from exc


# --- Artifacts and the weights check -----------------------------------------------------------------------------


def model_storage_dir() -> Path:
    path = Path(settings.PNEUMO_MODEL_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def artifact_manifest(path: str | Path) -> Manifest:
    with _domain_errors():
        return _artifact.read_manifest(Path(path))


def weights_sha256(path: str | Path) -> str:
    """sha256 of an artifact's ``model.keras``, hashed once per version of the file in this process.

    mlcore caches the digest on the file's identity (inode, size, mtime, ctime), so registering, calibrating,
    loading and ``/readyz`` share one hash instead of reading 100+ MB each time.
    """
    weights = Path(path) / _artifact.MODEL_FILE
    try:
        return _artifact.weights_sha256(weights)
    except OSError as exc:
        raise ModelArtifactError(f"{weights} cannot be read ({exc}).") from exc


def verify_weights(version: ModelVersion) -> None:
    """Refuse a version whose weights on disk are not the ones registered (``ModelArtifactError``)."""
    on_disk = weights_sha256(version.path)
    if on_disk != version.sha256:
        raise ModelArtifactError(
            f"model.keras on disk ({on_disk[:12]}) does not match the registered sha256 ({version.sha256[:12]})."
        )


def artifact_validation_scores(path: str | Path) -> list[float]:
    """Validation probabilities stored with the artifact (empty for a model never validated)."""
    document = Path(path) / "evaluation" / "validation.json"
    if not document.is_file():
        return []
    records = json.loads(document.read_text(encoding="utf-8")).get("per_image", [])
    return [float(record["probability"]) for record in records]


def manifest_summary(manifest: Manifest) -> dict[str, Any]:
    """The fields of a manifest that the ModelVersion row keeps for display and serving."""
    return {
        "version": manifest.version,
        "threshold": float(manifest.threshold),
        "threshold_method": dict(manifest.threshold_method),
        "validated": bool(manifest.validated),
        "image_size": int(manifest.image_size),
        "preprocessing": dict(manifest.preprocessing),
        "metrics": dict(manifest.validation_metrics or {}),
        "test_metrics": dict(manifest.test_metrics or {}),
        "dataset": dict(manifest.dataset or {}),
        "population": manifest.population,
        "sha256": manifest.weights_sha256,
    }


# --- Intended use (the training population, from the manifest) ------------------------------------------------

NO_POPULATION = "population not recorded"
parse_dicom_age = _intended_use.parse_dicom_age


def model_intended_use(manifest: dict[str, Any] | None) -> dict[str, Any] | None:
    """The ``intended_use`` of a version's stored manifest; for one written before it existed, the Kermany ranges
    when its population says Kermany, else None ("population not recorded")."""
    manifest = manifest or {}
    recorded = manifest.get("intended_use")
    if isinstance(recorded, dict):
        return recorded
    return _intended_use.default_intended_use(str(manifest.get("population") or ""))


def intended_use_warnings(manifest: dict[str, Any] | None, metadata: dict[str, Any] | None) -> list[dict[str, str]]:
    """How a study (its ``dicom_metadata``) is outside the version's intended use, as JSON-ready warnings."""
    metadata = metadata or {}
    warnings = _intended_use.intended_use_warnings(
        model_intended_use(manifest),
        patient_age=str(metadata.get("patient_age") or ""),
        view_position=str(metadata.get("view_position") or ""),
        modality=str(metadata.get("modality") or ""),
    )
    return [{"code": warning["code"], "message": warning["message"]} for warning in warnings]


def manifest_json(manifest: Manifest) -> dict[str, Any]:
    """The manifest as JSON for the row, without the (long) training history that stays in the artifact."""
    data = manifest.to_dict()
    training = data.get("training")
    if isinstance(training, dict):
        data["training"] = {k: v for k, v in training.items() if k != "history"}
    return data


def is_untrained_demo(manifest: dict[str, Any] | None) -> bool:
    """True for the untrained demo model's manifest (its results carry a "not validated" banner for good)."""
    training = (manifest or {}).get("training") or {}
    return isinstance(training, dict) and training.get("note") == _artifact.DEMO_NOTE


def create_demo_artifact(out_dir: Path, *, version: str, image_size: int) -> Manifest:
    """Write the untrained demo model's artifact (TensorFlow: commands only)."""
    with _domain_errors():
        return _artifact.create_demo_artifact(out_dir, image_size=image_size, version=version)


def wrap_h5_model(source: Path, out_dir: Path, *, version: str) -> Manifest:
    """Wrap a notebook ``.h5`` into an uncalibrated artifact folder (TensorFlow: workers and commands only)."""
    from mlcore import h5_import

    with _domain_errors():
        return h5_import.wrap_h5_model(source, out_dir, version=version)


# --- Inference (workers only) ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _predictor(version_id: int, path: str, sha256: str) -> Predictor:
    # Keyed on id, path and sha256: a re-registered artifact at the same id is never served from a stale cache.
    from mlcore.inference import Predictor

    logger.info("loading model version %s from %s", version_id, path)
    # Loading hashes model.keras once and checks it against the manifest; the manifest's digest is then compared
    # with the registered one BEFORE the model runs on anything, warm-up included.
    predictor = Predictor.from_artifact(Path(path))
    if predictor.manifest.weights_sha256 != sha256:
        raise ArtifactError(
            f"Model version {version_id}: weights on disk ({predictor.manifest.weights_sha256[:12]}) do not match "
            f"the registered sha256 ({sha256[:12]})."
        )
    predictor.warm_up()  # trace the graph now, not on a patient's study
    return predictor


def predictor_for(version: ModelVersion) -> Predictor:
    """The loaded predictor for a version: loaded once per worker process, then reused for every study."""
    with _domain_errors():
        return _predictor(version.id, version.path, version.sha256)


def predict(version: ModelVersion, data: bytes) -> InferenceResult:
    """Probability, label at the version's own threshold, Grad-CAM and display PNGs for one upload.

    Raises ``UnreadableImageError`` (the file cannot be screened) or ``ModelArtifactError`` (the version cannot be
    loaded). Anything else is unexpected and left to the task's failure handler.
    """
    predictor = predictor_for(version)
    try:
        return predictor.predict(data, max_pixels=settings.PNEUMO_MAX_IMAGE_PIXELS, threshold=version.threshold)
    except (ArtifactError, ImageError) as exc:
        raise _domain_error(exc) from exc


def result_rendition(result: InferenceResult) -> tuple[bytes, dict[str, Any]] | None:
    """The stored form of a result's 16-bit rendition: (gzip of raw little-endian uint16, its description).

    ``None`` when the image has none (PNG, JPEG, 8-bit or colour DICOM). See :mod:`mlcore.rendition`.
    """
    rendition = getattr(result, "rendition", None)
    if rendition is None:
        return None
    return rendition.to_gzip(), rendition.info()


# --- Calibration ---------------------------------------------------------------------------------------------------


def calibrate_scores(y_true: Sequence[int], scores: Sequence[float], target_sensitivity: float) -> CalibrationResult:
    """The highest threshold reaching the target sensitivity on labelled scores (NumPy only)."""
    from mlcore import calibration

    with _domain_errors():
        return calibration.calibrate_scores(list(y_true), list(scores), target_sensitivity)


def calibrate_on_folder(version: ModelVersion, folder: Path, target_sensitivity: float) -> CalibrationResult:
    """Run a version on a labelled folder and choose its threshold there (TensorFlow: workers and commands).

    The weights are checked against the registered sha256 first; the check's hash is the one loading reuses.
    """
    from mlcore import calibration

    verify_weights(version)
    with _domain_errors():
        return calibration.calibrate_on_folder(version.path, folder, target_sensitivity)


# --- Training and evaluation (workers and commands) ------------------------------------------------------------------


def train_config(**options: Any) -> TrainConfig:
    """A validated training configuration (``ModelVersionError`` with mlcore's reason when refused)."""
    from mlcore.training_config import TrainConfig

    with _domain_errors():
        return TrainConfig(**options)


def train(
    config: TrainConfig,
    *,
    progress: Callable[[TrainingProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainingResult:
    """Train per the specification. Raises ``TrainingCancelledError`` when ``should_stop`` says so.

    Other errors of the training code propagate as they are: the caller records them on the run.
    """
    from mlcore import training
    from mlcore.training_progress import TrainingCancelled

    try:
        return training.train(config, progress=progress, should_stop=should_stop)
    except TrainingCancelled as exc:
        raise TrainingCancelledError(str(exc)) from exc


def evaluate_folder(
    artifact_dir: str | Path, data_dir: str | Path, out_dir: str | Path, *, threshold: float | None = None
) -> EvaluationReport:
    """Evaluate an artifact on a labelled folder and write its report and plots (TensorFlow: commands only)."""
    from mlcore import evaluation

    with _domain_errors():
        return evaluation.evaluate_folder(artifact_dir, data_dir, out_dir, threshold=threshold)


def reset_caches() -> None:
    """Forget loaded predictors (tests, and a worker told that an artifact was replaced)."""
    _predictor.cache_clear()


def count_training_images(data_dir: str | Path) -> int | None:
    """Images under ``<data_dir>/train/{NORMAL,PNEUMONIA}`` as training would find them; None without a train/ folder.

    For the training form's time estimate: a directory listing, no image is opened.
    """
    from mlcore.data import IMAGE_SUFFIXES

    train = Path(data_dir) / "train"
    if not train.is_dir():
        return None
    count = 0
    for label in ("NORMAL", "PNEUMONIA"):
        folder = train / label
        if folder.is_dir():
            count += sum(
                1
                for p in folder.iterdir()
                if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
            )
    return count
