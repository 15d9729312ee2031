"""Transformer encoder with pre-layer-norm blocks and a convolutional feed-forward part.

Input projection to the model dimension, positions (below), then per block:
layer norm -> masked multi-head self-attention -> dropout + residual -> layer norm ->
convolution over time (kernel width `kernel`) + ReLU -> projection back -> dropout + residual;
a final layer norm. Attention masks padded keys and the convolution zeroes padded positions,
so padding never reaches a real position.

Positions: "absolute" adds sinusoids of each position to the projected input; "relative" gives
attention the sinusoids of each query-key distance instead (TENER, Yan et al., 2019), which tell
left from right and near from far; "none" for inputs that already encode order (a BiLSTM's output).
"""
import tensorflow as tf

from ner.config import TRANSFORMER_POSITIONS
from ner.model.encoders.attention import MultiHeadAttention
from ner.model.layers.conv import MaskedConv1D
from ner.model.layers.dense import Dense
from ner.model.layers.layer_norm import LayerNorm
from ner.model.layers.positions import sinusoids

POSITIONS = (*TRANSFORMER_POSITIONS, "none")

class TransformerBlock(tf.Module):
    def __init__(self, dim: int, heads: int, ffn_units: int, kernel: int, dropout: float, attention_dropout: float,
                 relative_positions: bool, scaled_attention: bool, name: str = "block"):
        super().__init__(name=name)
        self.dropout = dropout
        self.attention_norm = LayerNorm(dim, name="attention_norm")
        self.attention = MultiHeadAttention(dim, heads, attention_dropout, relative_positions, scaled_attention)
        self.feed_forward_norm = LayerNorm(dim, name="feed_forward_norm")
        self.feed_forward_conv = MaskedConv1D(dim, ffn_units, kernel, causal=False, name="feed_forward_conv")
        self.feed_forward_output = Dense(ffn_units, dim, name="feed_forward_output")

    def _residual(self, x: tf.Tensor, branch: tf.Tensor, training: bool) -> tf.Tensor:
        if training and self.dropout > 0:
            branch = tf.nn.dropout(branch, self.dropout)
        return x + branch

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        h = self._residual(x, self.attention(self.attention_norm(x), lengths, training), training)
        hidden = tf.nn.relu(self.feed_forward_conv(self.feed_forward_norm(h), lengths))
        return self._residual(h, self.feed_forward_output(hidden), training)


class Transformer(tf.Module):
    def __init__(self, input_dim: int, units: int, layers: int, heads: int, ffn_units: int, kernel: int,
                 dropout: float, attention_dropout: float, positions: str = "absolute", scaled_attention: bool = True,
                 name: str = "transformer"):
        """positions: absolute, relative or none (module docstring); scaled_attention: divide the
        attention logits by sqrt(head width) as in Vaswani et al., or not (TENER: sharper attention)."""
        super().__init__(name=name)
        if positions not in POSITIONS:
            raise ValueError(f"transformer positions={positions!r}: expected one of {', '.join(POSITIONS)}")
        self.dropout = dropout
        self.add_positions = positions == "absolute"
        self.projection = Dense(input_dim, units, name="input_projection")
        self.blocks = [TransformerBlock(units, heads, ffn_units, kernel, dropout, attention_dropout,
                                        relative_positions=positions == "relative", scaled_attention=scaled_attention,
                                        name=f"block_{i}")
                       for i in range(layers)]
        self.final_norm = LayerNorm(units, name="final_norm")
        self.output_dim = units

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """x [B, T, input_dim], lengths [B] -> [B, T, units] (positions past a length are undefined)."""
        h = self.projection(x)
        if self.add_positions:
            h += sinusoids(tf.range(tf.shape(h)[1]), self.output_dim)
        if training and self.dropout > 0:
            h = tf.nn.dropout(h, self.dropout)
        for block in self.blocks:
            h = block(h, lengths, training)
        return self.final_norm(h)
