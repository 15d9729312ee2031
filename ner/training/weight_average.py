"""An exponential moving average of the trainable weights (Polyak averaging), as a tf.Module.

Adam's last iterates wander around the optimum from batch to batch; their running average
sits closer to it, so dev scores jump less between epochs and early stopping picks a model
less by luck. The trainer evaluates and saves the best checkpoint with the averaged weights
swapped in; training continues from the raw weights.
"""
from contextlib import contextmanager

import tensorflow as tf


class WeightAverage(tf.Module):
    def __init__(self, variables, decay: float, name: str = "weight_average"):
        super().__init__(name=name)
        self.decay = decay
        self.weights = list(variables)
        self.averages = [tf.Variable(v, trainable=False, name="average") for v in self.weights]

    def update(self, step: tf.Tensor):
        """Folds the current weights in; `step` (updates so far) shortens the memory early on,
        when the average would otherwise remember the random initialisation."""
        step = tf.cast(step, tf.float32)
        decay = tf.minimum(self.decay, (1.0 + step) / (10.0 + step))
        for average, variable in zip(self.averages, self.weights):
            average.assign(decay * average + (1.0 - decay) * variable)

    @contextmanager
    def swapped_in(self):
        """Within the block the variables hold the averages (and the averages the raw weights)."""
        self._swap()
        try:
            yield
        finally:
            self._swap()

    def _swap(self):
        for average, variable in zip(self.averages, self.weights):
            raw = tf.identity(variable)
            variable.assign(average)
            average.assign(raw)
