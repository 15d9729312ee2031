"""Multi-layer bidirectional LSTM on TensorFlow's fused CPU kernel (tf.raw_ops.BlockLSTMV2).

The backward direction runs the same kernel on each sentence reversed within its own length
(tf.reverse_sequence), so padding after a sentence never reaches its states.
"""
import tensorflow as tf

from layers.initializers import glorot_uniform


class LSTMDirection(tf.Module):
    def __init__(self, input_dim: int, units: int, name: str):
        super().__init__(name=name)
        self.units = units
        self.kernel = tf.Variable(glorot_uniform([input_dim + units, 4 * units], input_dim + units, units), name="kernel")
        # BlockLSTMV2 gate order is input, cell, forget, output; a forget bias of 1 eases early training.
        self.bias = tf.Variable(tf.concat([tf.zeros([2 * units]), tf.ones([units]), tf.zeros([units])], 0), name="bias")

    def __call__(self, x_time_major: tf.Tensor) -> tf.Tensor:
        """x [T, B, D] -> hidden states [T, B, units]."""
        batch = tf.shape(x_time_major)[1]
        zeros = tf.zeros([batch, self.units])
        no_peephole = tf.zeros([self.units])
        outputs = tf.raw_ops.BlockLSTMV2(
            seq_len_max=tf.cast(tf.shape(x_time_major)[0], tf.int64), x=x_time_major, cs_prev=zeros, h_prev=zeros,
            w=self.kernel, wci=no_peephole, wcf=no_peephole, wco=no_peephole, b=self.bias,
            cell_clip=0.0, use_peephole=False)
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
        for i, (forward, backward) in enumerate(zip(self.forward_layers, self.backward_layers)):
            if i > 0 and training and self.dropout > 0:
                h = tf.nn.dropout(h, self.dropout)
            reversed_h = tf.reverse_sequence(h, lengths, seq_axis=0, batch_axis=1)
            backward_h = tf.reverse_sequence(backward(reversed_h), lengths, seq_axis=0, batch_axis=1)
            h = tf.concat([forward(h), backward_h], axis=-1)
        return tf.transpose(h, [1, 0, 2])
