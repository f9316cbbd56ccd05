"""The ResNet50 + attention-head pneumonia classifier of the training specification.

Architecture (``reference/model-training.md``)::

    ResNet50 base (include_top=False)          -> conv5_block3_out (h, w, 2048)
    GlobalAveragePooling2D            "gap"     -> (2048,)
    Dense(2048, sigmoid)              "attention_weights"
    Multiply([gap, attention_weights]) "attention"
    Dense(512, relu) "head_dense_1" -> BatchNormalization "head_bn" -> Dropout(0.5) "head_dropout_1"
    Dense(256, relu) "head_dense_2" -> Dropout(0.3) "head_dropout_2"
    Dense(128, relu) "head_dense_3" -> Dropout(0.2) "head_dropout_3"
    Dense(1, sigmoid) "prediction"  -> P(PNEUMONIA), shape (N, 1) float32

Input: ``(N, S, S, 3)`` float32 in **[0, 1]** (CLAHE-enhanced grayscale replicated to
three channels, see :mod:`mlcore.preprocessing`). ResNet50's own
``keras.applications.resnet50.preprocess_input`` (BGR, mean-subtracted 0-255) is
deliberately *not* applied: the specification feeds [0, 1] images and the notebook
models were trained that way; a different input scaling here would silently change
every prediction. Training and inference share one preprocessing path instead.

The base is built with ``input_tensor=inputs`` so that its layers are part of this
model's graph (not a nested sub-model): Grad-CAM can then take ``conv5_block3_out``
directly with ``model.get_layer``, and one forward pass yields prediction and heatmap.

TensorFlow/Keras is imported inside functions so that importing this module is cheap.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import TYPE_CHECKING

from mlcore.rules import is_h5_path, parse_weights

if TYPE_CHECKING:  # pragma: no cover
    import keras

logger = logging.getLogger(__name__)

#: Last convolutional block output of ResNet50, used by Grad-CAM.
LAST_CONV_LAYER = "conv5_block3_out"
#: Name of the final sigmoid layer.
PREDICTION_LAYER = "prediction"
#: Names of the layers added on top of the ResNet50 base.
HEAD_LAYER_NAMES = (
    "gap",
    "attention_weights",
    "attention",
    "head_dense_1",
    "head_bn",
    "head_dropout_1",
    "head_dense_2",
    "head_dropout_2",
    "head_dense_3",
    "head_dropout_3",
    PREDICTION_LAYER,
)
_PARTIAL_LOAD = re.compile(r"skipping|could not be loaded|freshly-initiali[sz]ed|mismatch", re.IGNORECASE)
MIN_IMAGE_SIZE = 32  # ResNet50 (include_top=False) refuses smaller inputs.

_WEIGHTS_HINT = (
    "Pass a local copy with --weights /path/to/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5 "
    "or train from random initialisation with --weights none."
)


class WeightsUnavailableError(RuntimeError):
    """The requested base weights could not be fetched or loaded."""


def build_classifier(
    *, image_size: int = 384, weights: str | None = "imagenet", seed: int | None = None
) -> keras.Model:
    """Build the (uncompiled) classifier.

    Args:
        image_size: Square input size S in pixels (>= 32).
        weights: ``"imagenet"`` (downloaded by Keras; needs internet or a cached copy in
            ``~/.keras/models``), ``None`` / ``"none"`` for random initialisation, or a path
            to a ResNet50 no-top weights file (legacy ``.h5`` as published by Keras, or a
            Keras 3 ``.weights.h5`` saved from a ResNet50 base); read by
            :func:`mlcore.rules.parse_weights`.
        seed: When given, calls ``keras.utils.set_random_seed(seed)`` first (global RNG
            state) so that the random initialisation is reproducible.

    Returns:
        ``keras.Model`` named ``"pneumonia_resnet50"``: input ``(N, S, S, 3)`` float32 in
        [0, 1], output ``(N, 1)`` float32 probability of PNEUMONIA.

    Raises:
        ValueError: ``image_size`` < 32.
        WeightsUnavailableError: ImageNet weights could not be downloaded, or the local
            weights file is missing or does not fit the ResNet50 base.
    """
    import keras

    if image_size < MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be >= {MIN_IMAGE_SIZE} for ResNet50, got {image_size}")
    weights = _parse_weights(weights)
    if seed is not None:
        keras.utils.set_random_seed(seed)

    inputs = keras.Input(shape=(image_size, image_size, 3), dtype="float32", name="image")
    base = _build_base(inputs, weights)

    x = keras.layers.GlobalAveragePooling2D(name="gap")(base.output)
    # Channel attention of the spec: a sigmoid gate per pooled feature.
    attention = keras.layers.Dense(2048, activation="sigmoid", name="attention_weights")(x)
    x = keras.layers.Multiply(name="attention")([x, attention])
    x = keras.layers.Dense(512, activation="relu", name="head_dense_1")(x)
    x = keras.layers.BatchNormalization(name="head_bn")(x)
    x = keras.layers.Dropout(0.5, name="head_dropout_1")(x)
    x = keras.layers.Dense(256, activation="relu", name="head_dense_2")(x)
    x = keras.layers.Dropout(0.3, name="head_dropout_2")(x)
    x = keras.layers.Dense(128, activation="relu", name="head_dense_3")(x)
    x = keras.layers.Dropout(0.2, name="head_dropout_3")(x)
    # float32 output even under a mixed-precision policy: thresholds compare probabilities.
    outputs = keras.layers.Dense(1, activation="sigmoid", dtype="float32", name=PREDICTION_LAYER)(x)
    return keras.Model(inputs, outputs, name="pneumonia_resnet50")


def _parse_weights(weights: str | None) -> str | None:
    """:func:`mlcore.rules.parse_weights`, refusing a missing file as unavailable weights (with the hint)."""
    try:
        return parse_weights(weights)
    except ValueError:
        raise WeightsUnavailableError(f"Weights file not found: {weights!r}. {_WEIGHTS_HINT}") from None


def _build_base(inputs: keras.KerasTensor, weights: str | None) -> keras.Model:
    """Build ResNet50 (no top) on ``inputs`` with weights already parsed by :func:`_parse_weights`."""
    import keras

    if weights is None:
        return keras.applications.ResNet50(include_top=False, weights=None, input_tensor=inputs)
    if weights == "imagenet":
        try:
            return keras.applications.ResNet50(include_top=False, weights="imagenet", input_tensor=inputs)
        except Exception as exc:  # Keras raises a bare Exception("URL fetch failure ...").
            raise WeightsUnavailableError(
                f"ImageNet weights for ResNet50 could not be fetched ({exc}). {_WEIGHTS_HINT}"
            ) from exc
    path = weights
    if not is_h5_path(path):
        raise WeightsUnavailableError(f"Weights file must be a .h5 or .weights.h5 file, got {path!r}. {_WEIGHTS_HINT}")
    base = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=inputs)
    try:
        # Same call Keras itself makes for the downloaded file: legacy .h5 is loaded by
        # topology (layer order), .weights.h5 by the Keras 3 layer paths. Both must match
        # the ResNet50 base exactly; a partial load would be a silently different model.
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            base.load_weights(path)
    except Exception as exc:
        raise WeightsUnavailableError(
            f"Could not load ResNet50 base weights from {path!r}: {exc}. {_WEIGHTS_HINT}"
        ) from exc
    # Keras 3 only *warns* when parts of a .weights.h5 file are missing and keeps those
    # layers randomly initialised; for a medical model that is an error.
    skipped = [str(w.message) for w in caught if _PARTIAL_LOAD.search(str(w.message))]
    if skipped:
        raise WeightsUnavailableError(
            f"Could not load ResNet50 base weights from {path!r}: the file does not cover every layer "
            f"({skipped[0][:200]}). {_WEIGHTS_HINT}"
        )
    for w in caught:
        logger.warning("while loading %s: %s", path, w.message)
    logger.info("Loaded ResNet50 base weights from %s", path)
    return base


def base_layers(model: keras.Model) -> list[keras.layers.Layer]:
    """Return the ResNet50 base layers of a classifier, in ResNet50's own order.

    Index 0 is the input layer, as in ``keras.applications.ResNet50(...).layers``, so
    ``fine_tune_from_layer=100`` means the same layer as in the training notebook.

    Raises:
        ValueError: The model has no ``conv5_block3_out`` layer.
    """
    names = [layer.name for layer in model.layers]
    if LAST_CONV_LAYER not in names:
        raise ValueError(f"model has no layer {LAST_CONV_LAYER!r}; not built by build_classifier?")
    # Functional models list layers in topological order; everything up to the last
    # conv block output is the base, everything after it is the head.
    return list(model.layers[: names.index(LAST_CONV_LAYER) + 1])


def set_base_trainable(model: keras.Model, *, trainable: bool, from_layer: int = 0) -> None:
    """Freeze or (partly) unfreeze the ResNet50 base; the head stays trainable.

    Args:
        model: A model from :func:`build_classifier`.
        trainable: False freezes every base layer (phase 1). True unfreezes base layers
            with index >= ``from_layer`` (phase 2); layers before stay frozen.
        from_layer: First base layer index to unfreeze (input layer = 0).

    BatchNormalization layers of the base stay frozen even when unfrozen by index: a
    frozen BN layer runs in inference mode in Keras 3, so its ImageNet moving statistics
    are kept. Updating them from small fine-tuning batches of X-rays would shift every
    activation after it and destroy what the pretrained layers learnt (the usual
    transfer-learning guidance of the Keras guides).

    The model must be (re)compiled afterwards for the change to take effect in training.
    """
    import keras

    if from_layer < 0:
        raise ValueError(f"from_layer must be >= 0, got {from_layer}")
    layers = base_layers(model)
    for index, layer in enumerate(layers):
        unfreeze = trainable and index >= from_layer
        if isinstance(layer, keras.layers.BatchNormalization):
            unfreeze = False
        layer.trainable = unfreeze
    base_ids = {id(layer) for layer in layers}
    for layer in model.layers:
        if id(layer) not in base_ids:
            layer.trainable = True


def count_trainable_layers(model: keras.Model) -> tuple[int, int]:
    """Return ``(trainable base layers with weights, trainable head layers with weights)``."""
    layers = base_layers(model)
    base_ids = {id(layer) for layer in layers}
    base = sum(1 for layer in layers if layer.trainable and layer.weights)
    head = sum(1 for layer in model.layers if id(layer) not in base_ids and layer.trainable and layer.weights)
    return base, head
