"""A learned scalar mix of layers (ELMo, Peters et al. 2018): gamma * sum_k softmax(w)_k * layer_k."""
import tensorflow as tf


class ScalarMix(tf.Module):
    def __init__(self, layers: int, name: str = "scalar_mix"):
        super().__init__(name=name)
        self.weights = tf.Variable(tf.zeros([layers]), name="weights")  # starts as the plain average
        self.gamma = tf.Variable(1.0, name="gamma")

    def __call__(self, layers: tf.Tensor) -> tf.Tensor:
        """layers [..., K, D] -> [..., D]."""
        weights = tf.nn.softmax(self.weights)
        return self.gamma * tf.einsum("...kd,k->...d", layers, weights)
