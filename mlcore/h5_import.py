"""Wrap a Keras ``.h5`` model of the original training notebook into a model artifact.

The notebook (``reference/model-training.md``) saved ``resnet50_phase1_best.h5``, ``resnet50_final_best.h5`` and
``pneumonia_resnet50_final.h5``: whole models in the legacy HDF5 format, trained on CLAHE-enhanced [0, 1] images
(the preprocessing of :class:`mlcore.config.PreprocessingConfig`). A bare ``.h5`` carries none of what serving
needs (threshold, preprocessing, provenance), so it is re-saved as ``model.keras`` with a manifest that declares
the notebook's preprocessing and an UNCALIBRATED threshold: it must be calibrated before it takes traffic.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcore.artifact import Manifest, file_sha256, save_uncalibrated_artifact
from mlcore.errors import ArtifactError
from mlcore.intended_use import KERMANY_INTENDED_USE
from mlcore.model import LAST_CONV_LAYER, MIN_IMAGE_SIZE
from mlcore.training_config import KERMANY_POPULATION

if TYPE_CHECKING:  # pragma: no cover
    import keras

logger = logging.getLogger(__name__)

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def wrap_h5_model(h5_path: str | os.PathLike[str], out_dir: str | os.PathLike[str], *, version: str) -> Manifest:
    """Load a notebook ``.h5`` model, check it, and save it as an artifact folder.

    The model must have one input ``(None, S, S, 3)`` with ``S >= 32``, one sigmoid output ``(None, 1)``
    (P(PNEUMONIA)) and a top-level layer named ``conv5_block3_out`` (ResNet50's last block, for Grad-CAM). The
    manifest declares ``PreprocessingConfig(image_size=S)`` (the notebook's CLAHE, [0, 1] scaling), threshold
    0.5 marked ``uncalibrated`` and ``validated=False``.

    Args:
        h5_path: The ``.h5`` file (legacy Keras HDF5 format, whole model).
        out_dir: Artifact folder to write (created).
        version: Version name written into the manifest.

    Returns:
        The saved :class:`~mlcore.artifact.Manifest`.

    Raises:
        ArtifactError: Not a file, not HDF5, weights only, unloadable, or a model of the wrong shape.
    """
    source = Path(h5_path)
    if not source.is_file():
        raise ArtifactError(f"{source} is not a file")
    _check_hdf5_model_file(source)
    import keras

    try:
        # compile=False: the notebook compiled with its own metrics and optimizer; inference needs neither.
        model = keras.models.load_model(source, compile=False)
    except Exception as exc:  # Keras raises a variety of errors (ValueError, TypeError, OSError) on bad files.
        raise ArtifactError(f"Keras could not load {source.name} as a model: {exc}") from exc
    image_size = _check_structure(model, source.name)
    sha256 = file_sha256(source)
    note = f"imported from notebook .h5 {source.name}; calibrate before serving"
    manifest = save_uncalibrated_artifact(
        model,
        out_dir,
        version=version,
        image_size=image_size,
        note=note,
        dataset={"source": "original training notebook", "file": source.name, "sha256": sha256},
        training={"note": note, "imported_from": source.name, "h5_sha256": sha256, **_h5_attributes(source)},
        population=f"{KERMANY_POPULATION} (as documented for the original training notebook)",
        intended_use=KERMANY_INTENDED_USE,
    )
    logger.info("wrapped %s (%s) into artifact %s", source.name, sha256[:12], out_dir)
    return manifest


def _check_hdf5_model_file(source: Path) -> None:
    """Refuse, before Keras runs, files that are not HDF5 or that hold weights only."""
    with source.open("rb") as handle:
        signature = handle.read(len(_HDF5_SIGNATURE))
    if signature != _HDF5_SIGNATURE:
        raise ArtifactError(f"{source.name} is not an HDF5 file (a Keras .h5 model starts with the HDF5 signature)")
    try:
        with _open_hdf5(source) as handle:
            has_config = "model_config" in handle.attrs
    except OSError as exc:
        raise ArtifactError(f"{source.name} is not a readable HDF5 file: {exc}") from exc
    if not has_config:
        raise ArtifactError(
            f"{source.name} holds weights only (no model_config): save the whole model with model.save(...h5), "
            "not model.save_weights"
        )


def _check_structure(model: keras.Model, name: str) -> int:
    """Return the input size S, or raise :class:`ArtifactError` naming what does not fit."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ArtifactError(
            f"{name}: expected one input and one output. "
            f"Received: {len(model.inputs)} inputs and {len(model.outputs)} outputs"
        )
    input_shape = tuple(model.inputs[0].shape)
    if (
        len(input_shape) != 4
        or input_shape[3] != 3
        or input_shape[1] != input_shape[2]
        or not isinstance(input_shape[1], int)
        or input_shape[1] < MIN_IMAGE_SIZE
    ):
        raise ArtifactError(
            f"{name}: expected an input of shape (None, S, S, 3) with a fixed S >= {MIN_IMAGE_SIZE}. "
            f"Received: {input_shape}"
        )
    output_shape = tuple(model.outputs[0].shape)
    if output_shape[1:] != (1,):
        raise ArtifactError(f"{name}: expected one sigmoid output of shape (None, 1). Received: {output_shape}")
    activation = getattr(_output_layer(model), "activation", None)
    if getattr(activation, "__name__", "") != "sigmoid":
        raise ArtifactError(
            f"{name}: the output layer must apply a sigmoid (P(PNEUMONIA)). "
            f"Received: {getattr(activation, '__name__', activation)!r}"
        )
    if LAST_CONV_LAYER not in {layer.name for layer in model.layers}:
        raise ArtifactError(
            f"{name}: no top-level layer named {LAST_CONV_LAYER!r} (ResNet50's last block, needed for Grad-CAM). "
            "Was the ResNet50 base nested as one layer instead of built on the model's input?"
        )
    return int(input_shape[1])


def _output_layer(model: keras.Model) -> Any:
    history = getattr(model.outputs[0], "_keras_history", None)
    operation = getattr(history, "operation", None)
    return operation if operation is not None else model.layers[-1]


def _open_hdf5(source: Path) -> Any:
    """Open ``source`` read-only as an ``h5py.File`` (h5py is imported only when a .h5 model is wrapped)."""
    import h5py

    return h5py.File(source, "r")


def _h5_attributes(source: Path) -> dict[str, str]:
    """Keras and backend versions recorded in the file, for provenance (empty when absent)."""
    with _open_hdf5(source) as handle:
        values = {key: handle.attrs.get(key) for key in ("keras_version", "backend")}
    return {
        f"h5_{key}": value.decode() if isinstance(value, bytes) else str(value)
        for key, value in values.items()
        if value is not None
    }
