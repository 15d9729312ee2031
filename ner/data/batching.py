"""Sentences -> padded batches of strings for the model: a tf.data pipeline for training
(shuffled, bucketed by length), and plain padded arrays for tagging, which pay no pipeline set-up
per call (building a tf.data pipeline cost ~120 ms per call, against ~3 ms for the model on one
sentence)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner.data.conll import Sentence
from ner.data.schemes import convert_tags

# Sentences of similar length are batched together so that little time goes to padding.
BUCKET_BOUNDARIES = (8, 12, 16, 20, 25, 30, 40, 50, 70)


def padded_batch(sentences: Sequence[Sentence], feature_columns: Sequence[int]) -> dict[str, np.ndarray]:
    """{"words": [B, T], "lengths": int32 [B], "features": [B, T, F]} as numpy arrays of str, ''
    past each sentence's end: what every form of the model's predict takes."""
    lengths = np.array([len(sentence) for sentence in sentences], np.int32)
    width = int(lengths.max(initial=0))
    words = np.full((len(sentences), width), "", dtype=object)
    features = np.full((len(sentences), width, len(feature_columns)), "", dtype=object)
    for row, sentence in enumerate(sentences):
        words[row, :len(sentence)] = sentence.words
        if feature_columns:
            features[row, :len(sentence)] = [[token[c] for c in feature_columns] for token in sentence.columns]
    return {"words": words, "lengths": lengths, "features": features}


def make_dataset(sentences: Sequence[Sentence], feature_columns: Sequence[int], batch_size: int,
                 shuffle_seed: int, tag_scheme: tuple[str, str] | None = None):
    """Training batches: a tf.data pipeline of padded batches {"words", "lengths", "features"
    [B, T, F], "tags"?}, shuffled with shuffle_seed and bucketed by length. With
    tag_scheme=(source, target) the batches carry the gold tags converted to the target scheme."""
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
    dataset = tf.data.Dataset.from_tensor_slices(columns).shuffle(len(sentences), seed=shuffle_seed)
    dataset = dataset.map(lambda example: {**example, "lengths": tf.shape(example["words"])[0]})
    padding = {key: tf.constant("" if key != "lengths" else 0, spec.dtype)
               for key, spec in dataset.element_spec.items()}
    dataset = dataset.bucket_by_sequence_length(
        lambda example: example["lengths"], list(BUCKET_BOUNDARIES), [batch_size] * (len(BUCKET_BOUNDARIES) + 1),
        padding_values=padding)
    return dataset.prefetch(2)
