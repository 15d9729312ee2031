"""Weight initialisers drawn from TensorFlow's global seed (tf.random.set_seed)."""
import math

import tensorflow as tf


def glorot_uniform(shape, fan_in: int, fan_out: int) -> tf.Tensor:
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return tf.random.uniform(shape, -limit, limit)


def uniform(shape, limit: float) -> tf.Tensor:
    return tf.random.uniform(shape, -limit, limit)
