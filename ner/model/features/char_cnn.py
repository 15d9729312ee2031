"""Character CNN: embed each word's characters, convolve, max-pool over the real characters."""
import tensorflow as tf

from ner.model.features.embedding import Embedding
from ner.model.layers.initializers import glorot_uniform


class CharCNN(tf.Module):
    def __init__(self, num_chars: int, char_dim: int, filters: int, kernel: int, name: str = "char_cnn"):
        super().__init__(name=name)
        self.embedding = Embedding(num_chars, char_dim, name="char_embedding")
        self.kernel = tf.Variable(glorot_uniform([kernel, char_dim, filters], kernel * char_dim, filters), name="kernel")
        self.bias = tf.Variable(tf.zeros([filters]), name="bias")
        self.output_dim = filters

    def __call__(self, char_ids: tf.Tensor) -> tf.Tensor:
        """char_ids [B, T, L] (0 = padding) -> [B, T, filters]; an empty word gives zeros."""
        shape = tf.shape(char_ids)
        flat = tf.reshape(char_ids, [-1, shape[2]])
        # Padding chars embed to zeros, so a word's features do not depend on L.
        conv = tf.nn.conv1d(self.embedding(flat), self.kernel, stride=1, padding="SAME") + self.bias
        real = tf.not_equal(flat, 0)[..., None]
        pooled = tf.reduce_max(tf.where(real, conv, -1e9), axis=1)
        pooled = tf.where(tf.reduce_any(real, axis=1), pooled, 0.0)
        return tf.reshape(pooled, [shape[0], shape[1], self.output_dim])
