"""Highway layers against the formula, computed in numpy."""
import numpy as np
import tensorflow as tf

from ner.model.layers.highway import GATE_BIAS, Highway


def test_highway_matches_formula():
    tf.random.set_seed(0)
    highway = Highway(dim=5, layers=2)
    assert all((gate.bias.numpy() == GATE_BIAS).all() for gate in highway.gates)
    x = np.random.default_rng(0).normal(size=(2, 3, 5)).astype(np.float32)
    expected = x
    for transform, gate in zip(highway.transforms, highway.gates):
        t = 1 / (1 + np.exp(-(expected @ gate.kernel.numpy() + gate.bias.numpy())))
        h = np.maximum(expected @ transform.kernel.numpy() + transform.bias.numpy(), 0)
        expected = t * h + (1 - t) * expected
    np.testing.assert_allclose(highway(tf.constant(x)).numpy(), expected, atol=1e-5)
