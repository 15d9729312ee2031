"""The transformer's parts: layer norm, the masked convolution over time, sinusoidal positions.
Padding invariance of the whole encoder is in tests/test_model.py, with the other encoders."""
import numpy as np
import pytest
import tensorflow as tf

from ner.model.layers.conv import MaskedConv1D
from ner.model.layers.layer_norm import LayerNorm
from ner.model.layers.positions import sinusoids


def test_layer_norm_normalizes_each_position_over_the_last_axis():
    norm = LayerNorm(4)
    norm.scale.assign([1.0, 2.0, 0.5, 1.0])
    norm.offset.assign([0.0, 1.0, 0.0, -1.0])
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32) * 5
    expected = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-6) * [1, 2, 0.5, 1] + [0, 1, 0, -1]
    np.testing.assert_allclose(norm(tf.constant(x)).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("causal, width, offsets", [(True, 3, [-2, -1, 0]), (False, 3, [-1, 0, 1]),
                                                    (False, 2, [0, 1])])
def test_masked_conv_sees_its_window_of_real_positions_only(causal, width, offsets):
    tf.random.set_seed(0)
    conv = MaskedConv1D(input_dim=2, filters=3, width=width, causal=causal)
    conv.bias.assign([0.1, -0.2, 0.3])
    x = np.random.default_rng(0).normal(size=(1, 6, 2)).astype(np.float32)
    length = 4
    out = conv(tf.constant(x), tf.constant([length])).numpy()
    kernel = conv.kernel.numpy()
    for t in range(length):
        expected = conv.bias.numpy() + sum(x[0, t + offset] @ kernel[k] for k, offset in enumerate(offsets)
                                           if 0 <= t + offset < length)
        np.testing.assert_allclose(out[0, t], expected, atol=1e-5)


def test_sinusoids_of_positions_and_of_signed_distances():
    positions = sinusoids(tf.range(5), 7).numpy()
    frequencies = np.exp(-np.log(10000.0) * np.arange(4) / 4)
    angles = np.arange(5)[:, None] * frequencies
    np.testing.assert_allclose(positions, np.concatenate([np.sin(angles), np.cos(angles)], axis=1)[:, :7], atol=1e-5)
    # A matrix of query-key distances: the sines tell the two directions apart, the cosines do not.
    distances = sinusoids(tf.constant([[0, -2], [2, 0]]), 7).numpy()
    np.testing.assert_allclose(distances[1, 0], positions[2], atol=1e-5)
    np.testing.assert_allclose(distances[0, 1], positions[2] * [-1, -1, -1, -1, 1, 1, 1], atol=1e-5)
