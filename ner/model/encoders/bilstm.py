"""Multi-layer bidirectional LSTM on TensorFlow's fused CPU kernel (tf.raw_ops.BlockLSTM).

BlockLSTM, not BlockLSTMV2: measured on TF 2.21, BlockLSTMV2's forward pass uses gate order
i, f, c, o but its registered gradient does not match it (off by up to 0.6 against finite
differences), so models trained with it learn slowly and badly; BlockLSTM's gradient matches
(tests/model/test_layers.py checks both the forward pass and the gradient).

The backward direction runs the same kernel on each sentence reversed within its own length
(tf.reverse_sequence), so padding after a sentence never reaches its states.
"""
import tensorflow as tf

from ner.model.layers.initializers import glorot_uniform

FORGET_BIAS = 1.0  # eases early training: the cell keeps its state until it learns to forget


class LSTMDirection(tf.Module):
    def __init__(self, input_dim: int, units: int, name: str):
        super().__init__(name=name)
        self.units = units
        self.kernel = tf.Variable(glorot_uniform([input_dim + units, 4 * units], input_dim + units, units), name="kernel")
        # Gate blocks in the order input, cell, forget, output; the kernel adds FORGET_BIAS to the forget gate.
        self.bias = tf.Variable(tf.zeros([4 * units]), name="bias")

    def __call__(self, x_time_major: tf.Tensor, steps: tf.Tensor, zeros: tf.Tensor) -> tf.Tensor:
        """x [T, B, D], steps = T (int64), zeros [B, units] (the initial state) -> hidden states [T, B, units]."""
        no_peephole = tf.zeros([self.units])
        outputs = tf.raw_ops.BlockLSTM(
            seq_len_max=steps, x=x_time_major, cs_prev=zeros, h_prev=zeros,
            w=self.kernel, wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=self.bias,
            forget_bias=FORGET_BIAS, cell_clip=-1.0, use_peephole=False)  # a negative clip means none
        return outputs[6]


class BiLSTM(tf.Module):
    def __init__(self, input_dim: int, units: int, layers: int, dropout: float, name: str = "bilstm"):
        super().__init__(name=name)
        self.dropout = dropout
        self.forward_layers, self.backward_layers = [], []
        for i in range(layers):
            in_dim = input_dim if i == 0 else 2 * units
            self.forward_layers.append(LSTMDirection(in_dim, units, name=f"forward_{i}"))
            self.backward_layers.append(LSTMDirection(in_dim, units, name=f"backward_{i}"))
        self.output_dim = 2 * units

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        """x [B, T, D], lengths [B] -> [B, T, 2 * units] (positions past a length are undefined)."""
        h = tf.transpose(x, [1, 0, 2])
        shape = tf.shape(x)  # shared by every direction: each small op adds to a sentence's serving time
        steps, zeros = tf.cast(shape[1], tf.int64), tf.zeros(tf.stack([shape[0], self.output_dim // 2]))
        for i, (forward, backward) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0 and training and self.dropout > 0:
                h = tf.nn.dropout(h, self.dropout)
            reversed_h = tf.reverse_sequence(h, lengths, seq_axis=0, batch_axis=1)
            backward_h = tf.reverse_sequence(backward(reversed_h, steps, zeros), lengths, seq_axis=0, batch_axis=1)
            h = tf.concat([forward(h, steps, zeros), backward_h], axis=-1)
        return tf.transpose(h, [1, 0, 2])
