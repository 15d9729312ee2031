"""Layer normalisation over the last axis (each position on its own, so padding never mixes in)."""
import tensorflow as tf

EPSILON = 1e-6


class LayerNorm(tf.Module):
    def __init__(self, dim: int, name: str = "layer_norm"):
        super().__init__(name=name)
        self.scale = tf.Variable(tf.ones([dim]), name="scale")
        self.offset = tf.Variable(tf.zeros([dim]), name="offset")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        return normalize(x, self.scale, self.offset, EPSILON)


def normalize(x: tf.Tensor, scale, offset, epsilon: float) -> tf.Tensor:
    """x [..., dim] -> [..., dim], zero mean and unit variance per position, then scaled and offset."""
    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon) * scale + offset
