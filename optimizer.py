"""Adam with global-norm clipping and the learning-rate schedule, as a tf.Module.

Slots are created up front for the given variables (so the step runs inside tf.function and
under a tf.distribute strategy scope) and are saved in the checkpoint with the model.
"""
import tensorflow as tf

from config import Config


def learning_rate(config: Config, step: tf.Tensor) -> tf.Tensor:
    """Linear warmup to config.learning_rate, then exponential decay."""
    step = tf.cast(step, tf.float32)
    decayed = config.learning_rate * tf.pow(config.lr_decay_rate, step / config.lr_decay_steps)
    if config.warmup_steps > 0:
        decayed *= tf.minimum(1.0, (step + 1.0) / config.warmup_steps)
    return decayed


class Adam(tf.Module):
    def __init__(self, config: Config, variables, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 name: str = "adam"):
        super().__init__(name=name)
        self.config = config
        self.beta1, self.beta2, self.epsilon = beta1, beta2, epsilon
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.first_moments = [tf.Variable(tf.zeros_like(v), trainable=False, name="m") for v in variables]
        self.second_moments = [tf.Variable(tf.zeros_like(v), trainable=False, name="v") for v in variables]

    def apply(self, gradients, variables) -> tf.Tensor:
        """One update; returns the learning rate used."""
        gradients = [tf.convert_to_tensor(g) for g in gradients]  # embedding gradients arrive as IndexedSlices
        if self.config.clip_norm > 0:
            gradients, _ = tf.clip_by_global_norm(gradients, self.config.clip_norm)
        lr = learning_rate(self.config, self.step)
        t = tf.cast(self.step + 1, tf.float32)
        corrected_lr = lr * tf.sqrt(1.0 - self.beta2 ** t) / (1.0 - self.beta1 ** t)
        for g, v, m, s in zip(gradients, variables, self.first_moments, self.second_moments):
            m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            s.assign(self.beta2 * s + (1.0 - self.beta2) * tf.square(g))
            v.assign_sub(corrected_lr * m / (tf.sqrt(s) + self.epsilon))
        self.step.assign_add(1)
        return lr
