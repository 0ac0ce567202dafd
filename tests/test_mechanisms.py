"""Part II's by-hand mechanisms equal Keras's layers on random inputs and weights: what they compute does not
depend on training, so these hold on any machine and for any seed."""

import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("size, channels, filters", [(5, 1, 16), (3, 16, 64)])
def test_conv_by_hand_is_conv2d(nb, rng, size, channels, filters):
    layers = nb["layers"]
    x = rng.normal(size=(12, 12, channels)).astype(np.float32)
    layer = layers.Conv2D(filters, size, use_bias=False)
    expected = np.asarray(layer(x[np.newaxis]))[0]
    kernel = layer.get_weights()[0]
    assert np.allclose(nb["conv"](x, kernel), expected, atol=1e-5)


def test_max_pool_by_reshape_is_maxpooling2d(nb, rng):
    x = rng.normal(size=(10, 10, 64)).astype(np.float32)
    expected = np.asarray(nb["layers"].MaxPooling2D()(x[np.newaxis]))[0]
    assert np.array_equal(nb["max_pool"](x), expected)


def test_batch_norm_in_use_is_batchnormalization(nb, rng):
    """With moving averages, scale and offset set to random values, by hand equals Keras in inference mode."""
    layer = nb["layers"].BatchNormalization(momentum=0.9)
    x = rng.normal(2, 3, size=(5, 5, 64)).astype(np.float32)
    layer.build((None, 5, 5, 64))
    layer.set_weights([rng.uniform(0.5, 2, 64), rng.normal(size=64), rng.normal(size=64), rng.uniform(0.1, 5, 64)])
    expected = np.asarray(layer(x[np.newaxis], training=False))[0]
    assert np.allclose(nb["batch_norm"](x, layer), expected, atol=1e-5)


def test_relu(nb):
    assert np.array_equal(nb["relu"](np.array([-2.0, 0.0, 3.0])), [0.0, 0.0, 3.0])
