"""Highway layers (Srivastava et al. 2015): y = t * relu(W x + b) + (1 - t) * x, t = sigmoid(W_t x + b_t)."""
import tensorflow as tf

from ner.model.layers.dense import Dense

# t starts near sigmoid(-2) = 0.12, so each layer begins close to the identity and the features
# pass through unchanged until the transform has learned something useful.
GATE_BIAS = -2.0


class Highway(tf.Module):
    def __init__(self, dim: int, layers: int, name: str = "highway"):
        super().__init__(name=name)
        self.transforms = [Dense(dim, dim, name=f"transform_{i}") for i in range(layers)]
        self.gates = [Dense(dim, dim, name=f"gate_{i}") for i in range(layers)]
        for gate in self.gates:
            gate.bias.assign(tf.fill([dim], GATE_BIAS))

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        """x [..., dim] -> [..., dim]."""
        for transform, gate in zip(self.transforms, self.gates):
            transform_gate = tf.sigmoid(gate(x))
            x = transform_gate * tf.nn.relu(transform(x)) + (1.0 - transform_gate) * x
        return x
