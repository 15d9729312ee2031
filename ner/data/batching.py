"""Sentences -> padded batches of strings for the model: a tf.data pipeline for training
(shuffled, bucketed by length) and for tagging in order."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner.data.conll import Sentence
from ner.data.schemes import convert_tags

# Sentences of similar length are batched together so that little time goes to padding.
BUCKET_BOUNDARIES = (8, 12, 16, 20, 25, 30, 40, 50, 70)


def make_dataset(sentences: Sequence[Sentence], feature_columns: Sequence[int], batch_size: int,
                 tag_scheme: tuple[str, str] | None = None, shuffle_seed: int | None = None):
    """A tf.data pipeline of padded batches {"words", "lengths", "features" [B, T, F], "tags"?}.

    With tag_scheme=(source, target) the batches carry the gold tags converted to the target
    scheme. With shuffle_seed the sentences are shuffled and bucketed by length (training);
    without, batches keep the given order (callers sort by length first).
    """
    import tensorflow as tf  # only the batching needs TensorFlow

    lengths = [len(sentence) for sentence in sentences]

    def ragged(flat_values, inner_shape=()):
        values = tf.constant(np.array(flat_values, dtype=object).reshape((sum(lengths),) + inner_shape), tf.string)
        return tf.RaggedTensor.from_row_lengths(values, tf.constant(lengths, tf.int64))

    # Whole columns become tensors at once: no Python runs per sentence while batching.
    columns = {"words": ragged([w for s in sentences for w in s.words]),
               "features": ragged([[token[c] for c in feature_columns] for s in sentences for token in s.columns],
                                  (len(feature_columns),))}
    if tag_scheme is not None:
        columns["tags"] = ragged([t for s in sentences for t in convert_tags(s.tags, *tag_scheme)])
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(sentences), seed=shuffle_seed)
    dataset = dataset.map(lambda example: {**example, "lengths": tf.shape(example["words"])[0]})
    padding = {key: tf.constant("" if key != "lengths" else 0, spec.dtype)
               for key, spec in dataset.element_spec.items()}
    if shuffle_seed is None:
        dataset = dataset.padded_batch(batch_size, padding_values=padding)
    else:
        dataset = dataset.bucket_by_sequence_length(
            lambda example: example["lengths"], list(BUCKET_BOUNDARIES), [batch_size] * (len(BUCKET_BOUNDARIES) + 1),
            padding_values=padding)
    return dataset.prefetch(2)
