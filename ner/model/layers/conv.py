"""1-D convolution over time that zeroes the positions past each length first, so padding
contributes exactly what the convolution's own zero padding would: a sentence's outputs do not
depend on how wide the batch is padded."""
import tensorflow as tf

from ner.model.layers.initializers import glorot_uniform


class MaskedConv1D(tf.Module):
    def __init__(self, input_dim: int, filters: int, width: int, causal: bool, name: str = "conv"):
        """causal: position t sees t-width+1..t; otherwise a window centred on t (one more step
        to the right when the width is even)."""
        super().__init__(name=name)
        self.kernel = tf.Variable(glorot_uniform([width, input_dim, filters], width * input_dim, filters), name="kernel")
        self.bias = tf.Variable(tf.zeros([filters]), name="bias")
        left = width - 1 if causal else (width - 1) // 2
        self.time_padding = [left, width - 1 - left]

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """x [B, T, input_dim], lengths [B] -> [B, T, filters]."""
        real = tf.sequence_mask(lengths, tf.shape(x)[1])[..., None]
        x = tf.pad(tf.where(real, x, 0.0), [[0, 0], self.time_padding, [0, 0]])
        return tf.nn.conv1d(x, self.kernel, stride=1, padding="VALID") + self.bias
