"""Masked multi-head self-attention, with absolute or relative (TENER) positions: against a direct
numpy computation, and blind to padding."""
import numpy as np
import pytest
import tensorflow as tf

from ner.model.encoders.attention import MultiHeadAttention
from ner.model.encoders.stacked import ResidualSelfAttention


def project(dense, x):
    return x @ dense.kernel.numpy() + dense.bias.numpy()


def reference_sinusoid(distance, dim):
    frequencies = np.exp(-np.log(10000.0) * np.arange(dim // 2) / (dim // 2))
    return np.concatenate([np.sin(distance * frequencies), np.cos(distance * frequencies)])


def reference_logits(query, key, head, attention):
    """[T, length] logits of one head: content only, or TENER's content and distance terms."""
    if not attention.relative_positions:
        return query @ key.T * attention.scale
    u, v = attention.content_bias.numpy()[head, 0], attention.distance_bias.numpy()[head, 0]
    return np.array([[(q + u) @ k + (q + v) @ reference_sinusoid(t - j, len(q)) for j, k in enumerate(key)]
                     for t, q in enumerate(query)]) * attention.scale


def reference_attention(x, length, attention):
    """One sentence x [T, dim]: every head's softmax over the first `length` keys, computed directly."""
    query, key, value = (project(dense, x) for dense in (attention.query, attention.key, attention.value))
    heads = []
    for head, h in enumerate(np.split(np.arange(query.shape[1]), attention.heads)):
        logits = reference_logits(query[:, h], key[:length, h], head, attention)
        weights = np.exp(logits - logits.max(axis=1, keepdims=True))
        heads.append(weights / weights.sum(axis=1, keepdims=True) @ value[:length, h])
    return project(attention.output, np.concatenate(heads, axis=1))


@pytest.mark.parametrize("relative_positions, scaled, units", [(False, True, None), (True, False, None),
                                                               (True, True, None), (False, True, 6)])
def test_attention_matches_reference_and_ignores_padded_positions(relative_positions, scaled, units):
    tf.random.set_seed(0)
    attention = MultiHeadAttention(dim=8, heads=2, dropout=0.5, relative_positions=relative_positions, scaled=scaled,
                                   units=units)
    assert attention.heads * attention.head_dim == (units or 8)
    if relative_positions:  # biases away from their zero start, so that the reference checks their use
        attention.content_bias.assign(tf.random.normal(attention.content_bias.shape))
        attention.distance_bias.assign(tf.random.normal(attention.distance_bias.shape))
    x = tf.random.normal([2, 5, 8])
    lengths = tf.constant([3, 5])
    out = attention(x, lengths, training=False).numpy()
    for row, length in enumerate([3, 5]):
        np.testing.assert_allclose(out[row, :length], reference_attention(x.numpy()[row], length, attention)[:length],
                                   atol=1e-5)
    # Other values in the first sentence's padded positions change nothing in its real ones.
    garbage = tf.concat([x[:1, :3], tf.random.normal([1, 2, 8]) * 100], axis=1)
    changed = attention(tf.concat([garbage, x[1:]], axis=0), lengths, training=False).numpy()
    np.testing.assert_array_equal(changed[0, :3], out[0, :3])
    np.testing.assert_array_equal(changed[1], out[1])


def test_attention_dropout_applies_only_in_training():
    tf.random.set_seed(1)
    attention = MultiHeadAttention(dim=4, heads=1, dropout=0.5)
    x = tf.random.normal([1, 6, 4])
    lengths = tf.constant([6])
    np.testing.assert_array_equal(attention(x, lengths, training=False), attention(x, lengths, training=False))
    assert not np.allclose(attention(x, lengths, training=True), attention(x, lengths, training=False))


def reference_residual_attention(x, length, layer):
    """One sentence x [T, dim] through the residual layer at inference, with its norm where it is
    and its branch scaled by the gate if it has one."""
    def norm(v):
        normed = (v - v.mean(axis=-1, keepdims=True)) / np.sqrt(v.var(axis=-1, keepdims=True) + 1e-6)
        return normed * layer.norm.scale.numpy() + layer.norm.offset.numpy()
    gate = layer.gate.numpy() if layer.gate is not None else 1.0
    if layer.norm_position == "pre":
        return x + gate * reference_attention(norm(x), length, layer.attention)
    total = x + gate * reference_attention(x, length, layer.attention)
    return norm(total) if layer.norm_position == "post" else total


@pytest.mark.parametrize("norm", ["post", "pre", "none"])
@pytest.mark.parametrize("gate", [False, True])
@pytest.mark.parametrize("units", [None, 2])
def test_residual_attention_matches_reference_and_drops_its_branch_only_in_training(norm, gate, units):
    tf.random.set_seed(2)
    layer = ResidualSelfAttention(dim=4, heads=2, attention_dropout=0.0, dropout=0.5, norm=norm, gate=gate, units=units)
    if layer.norm is not None:  # a norm away from its identity start, so that the reference checks its use
        layer.norm.scale.assign(tf.random.normal([4]))
        layer.norm.offset.assign(tf.random.normal([4]))
    if gate:  # likewise a gate away from its zero start
        layer.gate.assign(-0.7)
    x = tf.random.normal([2, 5, 4])
    lengths = tf.constant([3, 5])
    inference = layer(x, lengths, training=False).numpy()
    for row, length in enumerate([3, 5]):
        np.testing.assert_allclose(inference[row, :length],
                                   reference_residual_attention(x.numpy()[row], length, layer)[:length], atol=1e-5)
    np.testing.assert_array_equal(inference, layer(x, lengths, training=False))
    assert not np.allclose(layer(x, lengths, training=True), inference)


def test_residual_attention_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match="norm 'middle'"):
        ResidualSelfAttention(dim=4, heads=2, attention_dropout=0.0, dropout=0.5, norm="middle")


def test_gated_residual_attention_starts_as_its_input():
    """A gate at its zero start passes the input through, even in training: the BiLSTM alone."""
    layer = ResidualSelfAttention(dim=4, heads=2, attention_dropout=0.1, dropout=0.5, norm="none", gate=True)
    x = tf.random.normal([2, 5, 4])
    np.testing.assert_array_equal(layer(x, tf.constant([3, 5]), training=True), x)
