"""Sinusoidal position encodings (Vaswani et al., 2017), for absolute positions or for distances."""
import math

import tensorflow as tf

MAX_WAVELENGTH = 10000.0


def sinusoids(positions: tf.Tensor, dim: int) -> tf.Tensor:
    """positions [...] (int or float) -> [..., dim]: sines then cosines, wavelengths from 2*pi to
    MAX_WAVELENGTH*2*pi. Sines are odd, so a negative distance is told apart from a positive one."""
    frequencies_count = (dim + 1) // 2
    frequencies = tf.exp(-math.log(MAX_WAVELENGTH) * tf.range(frequencies_count, dtype=tf.float32)
                         / frequencies_count)
    angles = tf.cast(positions, tf.float32)[..., None] * frequencies
    return tf.concat([tf.sin(angles), tf.cos(angles)], axis=-1)[..., :dim]  # an odd dim drops the last cosine
