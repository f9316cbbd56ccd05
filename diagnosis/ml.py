"""The only bridge between Django and ``mlcore``.

Lightweight parts (reading a manifest, hashing a file) are safe in the web process. Anything that touches
TensorFlow (``predictor_for``) is imported lazily and only ever called by workers and management commands, so the
web process never pays for TensorFlow (and never forks with it loaded).
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from mlcore.artifact import Manifest
    from mlcore.inference import Predictor

    from diagnosis.models import ModelVersion

logger = logging.getLogger(__name__)


def artifact_manifest(path: str | Path) -> Manifest:
    from mlcore.artifact import read_manifest

    return read_manifest(Path(path))


def artifact_weights_sha256(path: str | Path) -> str:
    from mlcore.artifact import file_sha256

    return file_sha256(Path(path) / "model.keras")


def artifact_validation_scores(path: str | Path) -> list[float]:
    """Validation probabilities stored with the artifact (empty for a model never validated)."""
    document = Path(path) / "evaluation" / "validation.json"
    if not document.is_file():
        return []
    records = json.loads(document.read_text(encoding="utf-8")).get("per_image", [])
    return [float(record["probability"]) for record in records]


def model_storage_dir() -> Path:
    path = Path(settings.PNEUMO_MODEL_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


@functools.lru_cache(maxsize=8)
def _predictor(version_id: int, path: str, sha256: str) -> Predictor:
    # Keyed on id, path and sha256: a re-registered artifact at the same id is never served from a stale cache.
    from mlcore.inference import Predictor

    logger.info("loading model version %s from %s", version_id, path)
    predictor = Predictor.from_artifact(Path(path))
    predictor.warm_up()  # trace the graph now, not on a patient's study
    if predictor.manifest.weights_sha256 != sha256:
        from mlcore.errors import ArtifactError

        raise ArtifactError(
            f"Model version {version_id}: weights on disk ({predictor.manifest.weights_sha256[:12]}) do not match "
            f"the registered sha256 ({sha256[:12]})."
        )
    return predictor


def predictor_for(version: ModelVersion) -> Predictor:
    """The loaded predictor for a version: loaded once per worker process, then reused for every study."""
    return _predictor(version.id, version.path, version.sha256)


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
