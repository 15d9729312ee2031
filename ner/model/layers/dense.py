"""A fully connected layer as tf.Module + tf.Variable (loads in every SavedModel API)."""
import tensorflow as tf

from ner.model.layers.initializers import glorot_uniform


class Dense(tf.Module):
    def __init__(self, input_dim: int, output_dim: int, name: str = "dense", kernel: tf.Variable | None = None,
                 bias: tf.Variable | None = None):
        """kernel [input_dim, output_dim] and bias [output_dim]: pretrained variables (BERT's), else new ones."""
        super().__init__(name=name)
        self.kernel = kernel if kernel is not None else tf.Variable(
            glorot_uniform([input_dim, output_dim], input_dim, output_dim), name="kernel")
        self.bias = bias if bias is not None else tf.Variable(tf.zeros([output_dim]), name="bias")

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """x: [..., input_dim] -> [..., output_dim]."""
        return tf.matmul(x, self.kernel) + self.bias  # [B, T, D] x [D, O] broadcasts: one op, not tensordot's dozen
