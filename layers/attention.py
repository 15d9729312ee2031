"""Masked multi-head self-attention: each position attends to the real positions of its own
sentence only, so padding (whatever its values) never changes a real position's output."""
import math

import tensorflow as tf

from layers.dense import Dense

# Replaces the logits of padded keys: exp() underflows to exactly 0, while -inf would give NaN
# in rows where every key is masked (queries past a length, whose outputs are undefined anyway).
MASKED_LOGIT = -1e9


class MultiHeadAttention(tf.Module):
    def __init__(self, dim: int, heads: int, dropout: float, name: str = "attention"):
        super().__init__(name=name)
        if dim % heads:
            raise ValueError(f"attention: dimension {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = dim // heads
        self.dropout = dropout
        self.query = Dense(dim, dim, name="query")
        self.key = Dense(dim, dim, name="key")
        self.value = Dense(dim, dim, name="value")
        self.output = Dense(dim, dim, name="output")

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """[B, T, dim] -> [B, heads, T, head_dim]."""
        shape = tf.shape(x)
        return tf.transpose(tf.reshape(x, [shape[0], shape[1], self.heads, self.head_dim]), [0, 2, 1, 3])

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """x [B, T, dim], lengths [B] -> [B, T, dim] (positions past a length are undefined)."""
        shape = tf.shape(x)
        query, key, value = (self._split_heads(project(x)) for project in (self.query, self.key, self.value))
        logits = tf.matmul(query, key, transpose_b=True) / math.sqrt(self.head_dim)  # [B, heads, T, T]
        real_keys = tf.sequence_mask(lengths, shape[1])[:, None, None, :]
        weights = tf.nn.softmax(tf.where(real_keys, logits, MASKED_LOGIT), axis=-1)
        if training and self.dropout > 0:
            weights = tf.nn.dropout(weights, self.dropout)
        heads = tf.transpose(tf.matmul(weights, value), [0, 2, 1, 3])
        return self.output(tf.reshape(heads, [shape[0], shape[1], self.heads * self.head_dim]))
