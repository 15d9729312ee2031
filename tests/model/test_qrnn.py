"""QRNN against a step-by-step numpy reference with the same weights."""
import numpy as np
import pytest
import tensorflow as tf

from ner.model.encoders.qrnn import QRNN


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def reference_direction(x, direction):
    """One sentence x [T, D] through one direction: causal convolution, then fo-pooling step by step."""
    kernel, bias = direction.gates.kernel.numpy(), direction.gates.bias.numpy()
    width = kernel.shape[0]
    cell = np.zeros(direction.units)
    outputs = []
    for t in range(len(x)):
        gates = bias + sum(x[t - width + 1 + k] @ kernel[k] for k in range(width) if t - width + 1 + k >= 0)
        candidate, forget, output = np.split(gates, 3)
        cell = sigmoid(forget) * cell + (1 - sigmoid(forget)) * np.tanh(candidate)
        outputs.append(sigmoid(output) * cell)
    return np.stack(outputs)


def reference_qrnn(x, qrnn):
    h = x
    for forward, backward in zip(qrnn.forward_layers, qrnn.backward_layers):
        out = np.concatenate([reference_direction(h, forward), reference_direction(h[::-1], backward)[::-1]], axis=1)
        h = out + h if out.shape == h.shape else out
    return h


@pytest.mark.parametrize("input_dim", [3, 8])  # 8 = 2 * units: the first layer is residual too
def test_qrnn_matches_reference_within_each_length(input_dim):
    tf.random.set_seed(0)
    qrnn = QRNN(input_dim=input_dim, units=4, layers=2, width=2, dropout=0.5)
    for direction in qrnn.forward_layers + qrnn.backward_layers:
        direction.gates.bias.assign(tf.random.normal([12]))
    x = np.random.default_rng(0).normal(size=(2, 5, input_dim)).astype(np.float32)
    lengths = [5, 3]
    out = qrnn(tf.constant(x), tf.constant(lengths), training=False).numpy()
    for row, length in enumerate(lengths):
        np.testing.assert_allclose(out[row, :length], reference_qrnn(x[row, :length], qrnn), atol=1e-5)
