"""Composite encoders: a BiLSTM followed by attention (bilstm+transformer, bilstm+mha)."""
import tensorflow as tf

from ner.config import MHA_NORMS
from ner.model.encoders.attention import MultiHeadAttention
from ner.model.layers.layer_norm import LayerNorm


class Stacked(tf.Module):
    """Encoders applied one after the other; each one's input_dim is the previous one's output_dim."""

    def __init__(self, encoders: list, name: str = "stacked"):
        super().__init__(name=name)
        self.encoders = encoders
        self.output_dim = encoders[-1].output_dim

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        for encoder in self.encoders:
            x = encoder(x, lengths, training)
        return x


class ResidualSelfAttention(tf.Module):
    """x + dropout(masked multi-head self-attention(x)), keeping the width, with the layer norm
    where `norm` says: "post" normalizes the sum, "pre" the attention's input only (the BiLSTM's
    output then reaches the head unchanged), "none" has none. The dropout on the attention branch
    (training only) keeps the layer from overfitting ahead of the BiLSTM. With `gate`, a learned
    scalar that starts at 0 scales the branch (ReZero), so training starts from the BiLSTM alone
    and takes in attention only as far as it helps. `units` narrows the queries, keys and values
    (default: as wide as x), fewer weights for the layer to overfit with."""

    def __init__(self, dim: int, heads: int, attention_dropout: float, dropout: float, norm: str = "post",
                 gate: bool = False, units: int | None = None, name: str = "residual_attention"):
        super().__init__(name=name)
        if norm not in MHA_NORMS:
            raise ValueError(f"residual attention: norm {norm!r}, expected one of {', '.join(MHA_NORMS)}")
        self.attention = MultiHeadAttention(dim, heads, attention_dropout, units=units)
        self.norm_position = norm
        self.norm = LayerNorm(dim) if norm != "none" else None
        self.dropout = dropout
        self.gate = tf.Variable(0.0, name="gate") if gate else None
        self.output_dim = dim

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        branch = self.attention(self.norm(x) if self.norm_position == "pre" else x, lengths, training)
        if training and self.dropout > 0:
            branch = tf.nn.dropout(branch, self.dropout)
        if self.gate is not None:
            branch = self.gate * branch
        return self.norm(x + branch) if self.norm_position == "post" else x + branch
