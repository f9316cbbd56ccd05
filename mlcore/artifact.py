"""Model artifacts: a folder that keeps the weights and everything learnt with them.

Layout::

    <artifact>/model.keras        Keras 3 model (weights + architecture)
    <artifact>/manifest.json      Manifest: threshold, preprocessing, metrics, sha256 ...
    <artifact>/plots/*.png        evaluation plots
    <artifact>/evaluation/*.json  full EvaluationReports

The threshold, preprocessing settings and class names are saved *with* the weights
(like torchxrayvision's ``targets`` + ``op_threshs``): a model served with another
threshold or another preprocessing than it was validated with is a different, unvalidated
device. :func:`load_artifact` checks the sha256 of ``model.keras`` against the manifest
before Keras reads a byte of it, so a truncated copy or a swapped file is refused.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.config import PreprocessingConfig
from mlcore.errors import ArtifactError
from mlcore.intended_use import KERMANY_INTENDED_USE
from mlcore.training_config import KERMANY_POPULATION

if TYPE_CHECKING:  # pragma: no cover
    import keras

logger = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
MODEL_FILE = "model.keras"
SCHEMA_VERSION = 1
CLASS_NAMES = ("NORMAL", "PNEUMONIA")
DEMO_NOTE = "untrained demo model — not for clinical use"


@dataclass(frozen=True)
class Manifest:
    """Everything needed to serve and audit one model (``manifest.json``).

    Attributes:
        version: Artifact version (also the folder name for trained models).
        created: ISO 8601 UTC time of saving.
        code_revision: ``git rev-parse HEAD`` of the training code, or ``"unknown"``.
        preprocessing: ``PreprocessingConfig.to_dict()`` used in training.
        image_size: Model input size S (equals ``preprocessing["image_size"]``).
        threshold: Decision threshold on P(PNEUMONIA) (positive when ``p >= threshold``).
        threshold_method: How it was chosen, e.g. ``{"method": "target_sensitivity",
            "target": 0.95, "on": "validation", "n": 123}`` or ``{"method": "uncalibrated"}``.
        validated: True only when the threshold and metrics come from a validation set
            large enough to measure them (see ``TrainConfig.min_val_per_class``).
        validation_metrics: ``EvaluationReport.to_dict()`` on validation data (``{}`` if none).
        test_metrics: Same on the test split, or None.
        dataset: :func:`mlcore.data.dataset_summary`.
        training: History, config and environment of the training run.
        population: Who the training images come from.
        intended_use: The training population as checkable ranges (:mod:`mlcore.intended_use`), or None when
            it was never recorded (manifests written before it existed, models of unknown provenance).
        weights_sha256: sha256 of ``model.keras``.
        model_format: ``"keras"``.
        class_names: Output index -> name; the output is P(``class_names[1]``).
        schema_version: Manifest schema version.
    """

    version: str
    created: str
    code_revision: str
    preprocessing: dict[str, Any]
    image_size: int
    threshold: float
    threshold_method: dict[str, Any]
    validated: bool
    validation_metrics: dict[str, Any]
    test_metrics: dict[str, Any] | None
    dataset: dict[str, Any]
    training: dict[str, Any]
    population: str
    weights_sha256: str
    model_format: str = "keras"
    intended_use: dict[str, Any] | None = None
    class_names: list[str] = field(default_factory=lambda: list(CLASS_NAMES))
    schema_version: int = SCHEMA_VERSION

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as a JSON-serialisable dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        """Build and check a manifest read from JSON.

        Raises:
            ArtifactError: Missing fields, wrong types or an unsupported schema version.
        """
        if not isinstance(data, Mapping):
            raise ArtifactError("manifest must be a JSON object")
        names = [f.name for f in dataclasses.fields(cls)]
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise ArtifactError(f"manifest lacks fields: {', '.join(missing)}")
        schema = data.get("schema_version", SCHEMA_VERSION)
        if schema != SCHEMA_VERSION:
            raise ArtifactError(f"unsupported manifest schema_version {schema!r} (expected {SCHEMA_VERSION})")
        values = {name: data[name] for name in names if name in data}
        try:
            values["threshold"] = float(values["threshold"])
            values["image_size"] = int(values["image_size"])
        except (TypeError, ValueError) as exc:
            raise ArtifactError(f"manifest threshold/image_size are not numbers: {exc}") from exc
        if not 0.0 <= values["threshold"] <= 1.0:
            raise ArtifactError(f"manifest threshold {values['threshold']} outside [0, 1]")
        if not isinstance(values["preprocessing"], dict) or not isinstance(values["validated"], bool):
            raise ArtifactError("manifest preprocessing must be an object and validated a boolean")
        try:  # strict: unknown/missing keys or another schema are refused, never defaulted
            preprocessing = PreprocessingConfig.from_dict(values["preprocessing"])
        except ValueError as exc:
            raise ArtifactError(f"manifest preprocessing is invalid: {exc}") from exc
        if preprocessing.image_size != values["image_size"]:
            raise ArtifactError(
                f"manifest image_size {values['image_size']} != preprocessing image_size {preprocessing.image_size}"
            )
        if list(values.get("class_names", CLASS_NAMES)) != list(CLASS_NAMES):
            raise ArtifactError(f"unsupported class_names {values.get('class_names')!r}")
        if values.get("intended_use") is not None and not isinstance(values["intended_use"], dict):
            raise ArtifactError("manifest intended_use must be an object or null")
        if values.get("model_format", "keras") != "keras":
            raise ArtifactError(f"unsupported model_format {values.get('model_format')!r}")
        return cls(**values)


@dataclass(frozen=True)
class LoadedArtifact:
    """A verified model with its manifest."""

    model: keras.Model
    manifest: Manifest
    path: Path


def file_sha256(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks (model files are ~100+ MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


_WEIGHTS_DIGESTS: dict[tuple[str, int, int, int, int, int], str] = {}
_WEIGHTS_DIGESTS_LIMIT = 64


def _file_identity(path: Path) -> tuple[str, int, int, int, int, int]:
    # ctime cannot be set from user space and changes with every write or metadata change: a file rewritten in place
    # (even to the same size and mtime) gets a new identity, and so a new hash.
    stat = path.stat()
    return str(path.resolve()), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a weights file, hashed once per version of the file in this process.

    Registering, calibrating, loading and readiness probes all check the same 100+ MB file; the digest is cached
    on the file's identity (device, inode, size, mtime, ctime), so any change to the file is hashed again.

    Raises:
        OSError: The file cannot be read.
    """
    file = Path(path)
    before = _file_identity(file)
    cached = _WEIGHTS_DIGESTS.get(before)
    if cached is not None:
        return cached
    digest = file_sha256(file)
    if _file_identity(file) == before:  # unchanged while it was read: safe to remember
        if len(_WEIGHTS_DIGESTS) >= _WEIGHTS_DIGESTS_LIMIT:
            _WEIGHTS_DIGESTS.clear()
        _WEIGHTS_DIGESTS[before] = digest
    return digest


def git_revision(repo_dir: str | os.PathLike[str] | None = None) -> str:
    """Return ``git rev-parse HEAD`` (``+dirty`` when uncommitted changes) or ``"unknown"``.

    Args:
        repo_dir: Working tree to ask; defaults to the folder containing ``mlcore``.
    """
    cwd = Path(repo_dir) if repo_dir else Path(__file__).resolve().parent.parent
    # "git" from PATH with fixed arguments, as a developer would run it: the revision is provenance only.
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if head.returncode != 0:
            return "unknown"
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def _write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename): readers never see half a manifest."""
    tmp = path.with_name(path.name + ".tmp")
    text = json.dumps(data, indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    tmp.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp, path)


def save_artifact(
    model: keras.Model,
    out_dir: str | os.PathLike[str],
    *,
    version: str,
    preprocessing: Mapping[str, Any],
    threshold: float,
    threshold_method: Mapping[str, Any],
    validated: bool,
    validation_metrics: Mapping[str, Any] | None,
    test_metrics: Mapping[str, Any] | None,
    dataset: Mapping[str, Any],
    training: Mapping[str, Any],
    population: str,
    intended_use: Mapping[str, Any] | None = None,
    code_revision: str | None = None,
    evaluations: Mapping[str, Mapping[str, Any]] | None = None,
) -> Manifest:
    """Save ``model.keras``, ``evaluation/*.json`` and ``manifest.json`` into ``out_dir``.

    The manifest is written last, so a folder without ``manifest.json`` is an incomplete
    save and is refused by :func:`load_artifact`.

    Args:
        model: Model with input ``(None, S, S, 3)`` and output ``(None, 1)``.
        out_dir: Artifact folder (created; existing files with the same names are replaced).
        version: Artifact version string.
        preprocessing: ``PreprocessingConfig.to_dict()``; its ``image_size`` must match the model.
        threshold: Decision threshold in [0, 1].
        threshold_method: See :class:`Manifest`.
        validated: See :class:`Manifest`.
        validation_metrics, test_metrics: ``EvaluationReport.to_dict()`` or None.
        dataset, training, population, intended_use: See :class:`Manifest`.
        code_revision: Defaults to :func:`git_revision`.
        evaluations: Extra JSON documents written as ``evaluation/<name>.json``.

    Returns:
        The saved :class:`Manifest`.

    Raises:
        ValueError: Threshold outside [0, 1] or model/preprocessing size mismatch.
    """
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")
    image_size = int(preprocessing["image_size"])
    input_shape = tuple(model.inputs[0].shape)
    if input_shape[1:3] != (image_size, image_size):
        raise ValueError(f"model input {input_shape} does not match preprocessing image_size {image_size}")
    out = Path(out_dir)
    (out / "evaluation").mkdir(parents=True, exist_ok=True)
    (out / "plots").mkdir(exist_ok=True)
    model_path = out / MODEL_FILE
    if (out / MANIFEST_FILE).exists():
        (out / MANIFEST_FILE).unlink()  # the old manifest must not vouch for the new weights
    model.save(model_path)
    for name, document in (evaluations or {}).items():
        _write_json(out / "evaluation" / f"{name}.json", document)
    manifest = Manifest(
        version=version,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        code_revision=code_revision if code_revision is not None else git_revision(),
        preprocessing=dict(preprocessing),
        image_size=image_size,
        threshold=float(threshold),
        threshold_method=dict(threshold_method),
        validated=bool(validated),
        validation_metrics=dict(validation_metrics or {}),
        test_metrics=dict(test_metrics) if test_metrics is not None else None,
        dataset=dict(dataset),
        training=dict(training),
        population=population,
        intended_use=dict(intended_use) if intended_use is not None else None,
        weights_sha256=file_sha256(model_path),
    )
    _write_json(out / MANIFEST_FILE, manifest.to_dict())
    logger.info("Saved model artifact %s (%s) to %s", version, manifest.weights_sha256[:12], out)
    return manifest


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read ``manifest.json`` from an artifact folder (or the file itself).

    Raises:
        ArtifactError: Missing, unreadable or invalid manifest.
    """
    path = Path(path)
    manifest_path = path / MANIFEST_FILE if path.is_dir() else path
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ArtifactError(f"no {MANIFEST_FILE} in {path} (incomplete or not a model artifact)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"unreadable manifest {manifest_path}: {exc}") from exc
    return Manifest.from_dict(data)


def load_artifact(path: str | os.PathLike[str]) -> LoadedArtifact:
    """Verify and load an artifact folder.

    Raises:
        ArtifactError: Bad manifest, missing ``model.keras``, sha256 mismatch, a file Keras
            cannot load, or a model whose shapes disagree with the manifest.
    """
    from mlcore.model import LAST_CONV_LAYER

    folder = Path(path)
    manifest = read_manifest(folder)
    model_path = folder / MODEL_FILE
    if not model_path.is_file():
        raise ArtifactError(f"{MODEL_FILE} missing from artifact {folder}")
    digest = weights_sha256(model_path)
    if digest != manifest.weights_sha256:
        raise ArtifactError(
            f"{model_path} sha256 {digest[:16]}... does not match manifest {manifest.weights_sha256[:16]}...: "
            "refusing to load a modified or corrupt model"
        )
    import keras

    try:
        # safe_mode (default) refuses lambda layers; compile=False: inference only.
        model = keras.saving.load_model(model_path, compile=False)
    except Exception as exc:
        raise ArtifactError(f"Keras could not load {model_path}: {exc}") from exc
    input_shape = tuple(model.inputs[0].shape)
    if input_shape[1:] != (manifest.image_size, manifest.image_size, 3) or tuple(model.outputs[0].shape[1:]) != (1,):
        raise ArtifactError(f"model shapes {input_shape} -> {model.outputs[0].shape} disagree with the manifest")
    if LAST_CONV_LAYER not in {layer.name for layer in model.layers}:
        raise ArtifactError(f"model has no {LAST_CONV_LAYER!r} layer needed for Grad-CAM")
    return LoadedArtifact(model=model, manifest=manifest, path=folder)


def create_demo_artifact(
    out_dir: str | os.PathLike[str], *, image_size: int = 224, seed: int = 0, version: str = "demo-untrained"
) -> Manifest:
    """Save an UNTRAINED classifier (random weights) as an artifact for demos and tests.

    Its manifest says ``validated=False`` and threshold 0.5 with
    ``{"method": "uncalibrated", "note": "untrained demo model — not for clinical use"}``;
    its predictions carry no information.
    """
    from mlcore.model import build_classifier

    model = build_classifier(image_size=image_size, weights=None, seed=seed)
    return save_uncalibrated_artifact(
        model,
        out_dir,
        version=version,
        image_size=image_size,
        note=DEMO_NOTE,
        dataset={},
        training={"note": DEMO_NOTE, "weights": None, "seed": seed},
        population=f"none: {DEMO_NOTE}",
        # The demo stands in for the specification's model, which is trained on the Kermany data: it carries that
        # intended use, so the reading room shows the same out-of-population warnings a trained model would.
        intended_use={
            **KERMANY_INTENDED_USE,
            "population": f"untrained demo; checked as the population it stands in for: {KERMANY_POPULATION}",
        },
    )


def save_uncalibrated_artifact(
    model: keras.Model,
    out_dir: str | os.PathLike[str],
    *,
    version: str,
    image_size: int,
    note: str,
    dataset: Mapping[str, Any],
    training: Mapping[str, Any],
    population: str,
    intended_use: Mapping[str, Any] | None = None,
) -> Manifest:
    """Save a model that was never validated here: threshold 0.5 marked uncalibrated, the spec's preprocessing.

    Such a version must be calibrated before it takes traffic (demo models and imported notebook .h5 files).
    """
    return save_artifact(
        model,
        out_dir,
        version=version,
        preprocessing=PreprocessingConfig(image_size=image_size).to_dict(),
        threshold=0.5,
        threshold_method={"method": "uncalibrated", "note": note},
        validated=False,
        validation_metrics=None,
        test_metrics=None,
        dataset=dataset,
        training=training,
        population=population,
        intended_use=intended_use,
    )
