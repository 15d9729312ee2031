"""Bidirectional quasi-recurrent network (Bradbury et al. 2016): a convolution over time gives
every step's candidate z and forget/output gates f, o at once; only fo-pooling is sequential:

    c_t = f_t * c_{t-1} + (1 - f_t) * z_t,    h_t = o_t * c_t

The forward convolution is causal, and the backward direction runs on each sentence reversed
within its own length (tf.reverse_sequence), so padding after a sentence comes after its last
step in both directions and never reaches its states.
"""
import tensorflow as tf

from ner.model.layers.conv import MaskedConv1D


class QRNNDirection(tf.Module):
    def __init__(self, input_dim: int, units: int, width: int, name: str):
        super().__init__(name=name)
        self.units = units
        self.gates = MaskedConv1D(input_dim, 3 * units, width, causal=True, name="gates")

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor) -> tf.Tensor:
        """x [B, T, D] -> hidden states [B, T, units]; step t depends on steps up to t only."""
        candidate, forget, output = tf.split(self.gates(x, lengths), 3, axis=-1)
        forget = tf.sigmoid(forget)
        # tf.scan walks the first axis, so fo-pooling runs time-major.
        forget_tm = tf.transpose(forget, [1, 0, 2])
        update_tm = tf.transpose((1.0 - forget) * tf.tanh(candidate), [1, 0, 2])
        initial = tf.zeros([tf.shape(x)[0], self.units])
        cells_tm = tf.scan(lambda cell, step: step[0] * cell + step[1], (forget_tm, update_tm), initializer=initial)
        return tf.sigmoid(output) * tf.transpose(cells_tm, [1, 0, 2])


class QRNN(tf.Module):
    def __init__(self, input_dim: int, units: int, layers: int, width: int, dropout: float, name: str = "qrnn"):
        super().__init__(name=name)
        self.dropout = dropout
        self.forward_layers, self.backward_layers = [], []
        for i in range(layers):
            in_dim = input_dim if i == 0 else 2 * units
            self.forward_layers.append(QRNNDirection(in_dim, units, width, name=f"forward_{i}"))
            self.backward_layers.append(QRNNDirection(in_dim, units, width, name=f"backward_{i}"))
        self.output_dim = 2 * units
        self.first_layer_residual = input_dim == self.output_dim

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """x [B, T, D], lengths [B] -> [B, T, 2 * units] (positions past a length are undefined)."""
        h = x
        for i, (forward, backward) in enumerate(zip(self.forward_layers, self.backward_layers)):
            layer_input = h
            if i > 0 and training and self.dropout > 0:
                h = tf.nn.dropout(h, self.dropout)
            reversed_h = tf.reverse_sequence(h, lengths, seq_axis=1, batch_axis=0)
            backward_h = tf.reverse_sequence(backward(reversed_h, lengths), lengths, seq_axis=1, batch_axis=0)
            h = tf.concat([forward(h, lengths), backward_h], axis=-1)
            if i > 0 or self.first_layer_residual:  # residual wherever input and output widths agree
                h += layer_input
        return h
