"""mlcore.model: architecture, freezing, weights loading (tiny inputs, random weights)."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from mlcore.model import (  # noqa: E402
    HEAD_LAYER_NAMES,
    LAST_CONV_LAYER,
    WeightsUnavailableError,
    base_layers,
    build_classifier,
    count_trainable_layers,
    set_base_trainable,
)

SIZE = 32


@pytest.fixture(scope="module")
def model():
    return build_classifier(image_size=SIZE, weights=None, seed=0)


def test_layers_are_named_and_base_is_flat(model):
    names = {layer.name for layer in model.layers}
    assert set(HEAD_LAYER_NAMES) <= names
    assert LAST_CONV_LAYER in names
    # The base is part of the graph (not a nested Model), so Grad-CAM can reach it.
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert model.get_layer("attention_weights").units == 2048
    assert model.get_layer("head_dropout_1").rate == 0.5
    assert model.get_layer("prediction").activation.__name__ == "sigmoid"
    assert len(base_layers(model)) == 175  # == keras.applications.ResNet50(include_top=False).layers


def test_output_shape_and_range(model):
    x = np.random.default_rng(0).random((3, SIZE, SIZE, 3), dtype=np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (3, 1)
    assert y.dtype == np.float32
    assert np.all((y >= 0) & (y <= 1))


def test_set_base_trainable_counts(model):
    set_base_trainable(model, trainable=False)
    assert count_trainable_layers(model) == (0, 6)  # attention, 3 dense, head BN, prediction

    set_base_trainable(model, trainable=True, from_layer=0)
    # ResNet50 has 53 conv layers; its 53 BatchNorm layers stay frozen.
    assert count_trainable_layers(model) == (53, 6)
    batch_norms = [layer for layer in base_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batch_norms) == 53 and not any(layer.trainable for layer in batch_norms)

    set_base_trainable(model, trainable=True, from_layer=100)
    layers = base_layers(model)
    expected = sum(1 for layer in layers[100:] if isinstance(layer, keras.layers.Conv2D))
    assert 0 < expected < 53
    assert count_trainable_layers(model) == (expected, 6)
    assert all(not layer.trainable for layer in layers[:100] if layer.weights)
    assert model.get_layer("head_bn").trainable  # the head's own BN trains
    set_base_trainable(model, trainable=False)


def test_imagenet_unavailable_raises_helpful_error(monkeypatch):
    original = keras.applications.ResNet50

    def offline(*args, weights=None, **kwargs):
        if weights == "imagenet":
            raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -2]")
        return original(*args, weights=weights, **kwargs)

    monkeypatch.setattr(keras.applications, "ResNet50", offline)
    with pytest.raises(WeightsUnavailableError) as info:
        build_classifier(image_size=SIZE, weights="imagenet")
    message = str(info.value)
    assert "ImageNet weights" in message
    assert "--weights /path/to/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "--weights none" in message


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsUnavailableError, match="not found"):
        build_classifier(image_size=SIZE, weights=str(tmp_path / "nope.weights.h5"))


def _checked_layers(model):
    names = ("conv1_conv", "conv3_block2_2_conv", "conv5_block3_3_conv", "conv5_block3_3_bn")
    return [model.get_layer(name) for name in names]


@pytest.mark.parametrize("fmt", ["keras3", "legacy_h5"])
def test_local_weights_file_is_loaded_into_base(tmp_path, fmt):
    source = keras.applications.ResNet50(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))
    # Make the BN statistics non-default so that a skipped load would be visible.
    bn = source.get_layer("conv5_block3_3_bn")
    bn.moving_mean.assign(np.full(bn.moving_mean.shape, 0.25, np.float32))
    if fmt == "keras3":
        path = tmp_path / "base.weights.h5"
        source.save_weights(path)
    else:  # the format of Keras' published resnet50 ..._notop.h5 file
        h5py = pytest.importorskip("h5py")
        from keras.src.legacy.saving import legacy_h5_format

        path = tmp_path / "resnet50_notop.h5"
        with h5py.File(path, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(handle, source)

    model = build_classifier(image_size=SIZE, weights=str(path), seed=123)
    for loaded in _checked_layers(model):
        expected = source.get_layer(loaded.name)
        for got, want in zip(loaded.get_weights(), expected.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)


def test_wrong_weights_file_is_refused(tmp_path):
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "other.weights.h5"
    other.save_weights(path)
    with pytest.raises(WeightsUnavailableError, match="Could not load"):
        build_classifier(image_size=SIZE, weights=str(path))


def test_too_small_image_size():
    with pytest.raises(ValueError, match="32"):
        build_classifier(image_size=16, weights=None)
