"""Lookup tables: ids -> vectors. Row 0 is padding and always maps to zeros."""
import numpy as np
import tensorflow as tf

from ner.model.layers.initializers import uniform


class Embedding(tf.Module):
    """A trained embedding table."""

    def __init__(self, vocab_size: int, dim: int, name: str = "embedding"):
        super().__init__(name=name)
        self.table = tf.Variable(uniform([vocab_size, dim], 0.1), name="table")
        self.output_dim = dim

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        # Row 0 is read as zeros whatever the variable holds. Masking the table, not the vectors,
        # costs nothing in a frozen graph: the table is a constant there and this folds away.
        table = tf.concat([tf.zeros_like(self.table[:1]), self.table[1:]], axis=0)
        return tf.gather(table, ids)


class WordEmbedding(tf.Module):
    """Pretrained vectors (frozen or fine-tuned) plus, optionally, trained vectors for the
    train-only words that the pretrained set lacks (their rows in `pretrained` are zero)."""

    def __init__(self, pretrained: np.ndarray, num_oov: int, trainable: bool, train_oov: bool,
                 name: str = "word_embedding"):
        super().__init__(name=name)
        self.pretrained = tf.Variable(pretrained, trainable=trainable, name="pretrained")
        self.num_known = pretrained.shape[0] - num_oov
        self.output_dim = pretrained.shape[1]
        self.oov = (tf.Variable(uniform([num_oov, pretrained.shape[1]], 0.1), name="oov")
                    if train_oov and num_oov > 0 else None)

    def __call__(self, ids: tf.Tensor) -> tf.Tensor:
        vectors = tf.gather(self.pretrained, ids)
        if self.oov is None:
            return vectors
        oov_ids = ids - self.num_known
        is_oov = oov_ids >= 0
        learned = tf.gather(self.oov, tf.maximum(oov_ids, 0))
        return tf.where(is_oov[..., None], vectors + learned, vectors)
