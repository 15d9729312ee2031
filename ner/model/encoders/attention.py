"""Masked multi-head self-attention: each position attends to the real positions of its own
sentence only, so padding (whatever its values) never changes a real position's output.

With relative_positions, a query t scores key j as (q_t + u) . k_j + (q_t + v) . r(t - j), where
r is the sinusoid of the distance and u, v are learned per head (TENER, Yan et al., 2019)."""
import math

import tensorflow as tf

from ner.model.layers.dense import Dense
from ner.model.layers.positions import sinusoids

# Replaces the logits of padded keys: exp() underflows to exactly 0, while -inf would give NaN
# in rows where every key is masked (queries past a length, whose outputs are undefined anyway).
MASKED_LOGIT = -1e9


class MultiHeadAttention(tf.Module):
    def __init__(self, dim: int, heads: int, dropout: float, relative_positions: bool = False, scaled: bool = True,
                 units: int | None = None, name: str = "attention"):
        """scaled: divide the logits by sqrt(head width) (Vaswani et al.); TENER leaves them unscaled
        for sharper attention, which suits tagging, where few words matter to a word.
        units: the width of the queries, keys and values, all heads together (default dim); the
        output is projected back to dim."""
        super().__init__(name=name)
        units = units or dim
        if units % heads:
            raise ValueError(f"attention: width {units} is not divisible by {heads} heads")
        self.heads = heads
        self.head_dim = units // heads
        self.dropout = dropout
        self.scale = 1.0 / math.sqrt(self.head_dim) if scaled else 1.0
        self.query = Dense(dim, units, name="query")
        self.key = Dense(dim, units, name="key")
        self.value = Dense(dim, units, name="value")
        self.output = Dense(units, dim, name="output")
        self.relative_positions = relative_positions
        if relative_positions:
            self.content_bias = tf.Variable(tf.zeros([heads, 1, self.head_dim]), name="content_bias")
            self.distance_bias = tf.Variable(tf.zeros([heads, 1, self.head_dim]), name="distance_bias")

    def _split_heads(self, x: tf.Tensor) -> tf.Tensor:
        """[B, T, dim] -> [B, heads, T, head_dim]."""
        shape = tf.shape(x)
        return tf.transpose(tf.reshape(x, [shape[0], shape[1], self.heads, self.head_dim]), [0, 2, 1, 3])

    def _logits(self, query: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
        """query, key [B, heads, T, head_dim] -> [B, heads, T, T]."""
        if not self.relative_positions:
            return tf.matmul(query, key, transpose_b=True)
        steps = tf.range(tf.shape(query)[2])
        distances = sinusoids(steps[:, None] - steps[None, :], self.head_dim)  # [T, T, head_dim]
        return (tf.matmul(query + self.content_bias, key, transpose_b=True)
                + tf.einsum("bhtd,tjd->bhtj", query + self.distance_bias, distances))

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """x [B, T, dim], lengths [B] -> [B, T, dim] (positions past a length are undefined)."""
        shape = tf.shape(x)
        query, key, value = (self._split_heads(project(x)) for project in (self.query, self.key, self.value))
        logits = self._logits(query, key) * self.scale
        real_keys = tf.sequence_mask(lengths, shape[1])[:, None, None, :]
        weights = tf.nn.softmax(tf.where(real_keys, logits, MASKED_LOGIT), axis=-1)
        if training and self.dropout > 0:
            weights = tf.nn.dropout(weights, self.dropout)
        heads = tf.transpose(tf.matmul(weights, value), [0, 2, 1, 3])
        return self.output(tf.reshape(heads, [shape[0], shape[1], self.heads * self.head_dim]))
