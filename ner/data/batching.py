"""Sentences -> padded batches of strings for the model: a tf.data pipeline for training
(shuffled, bucketed by length), and plain padded arrays for tagging, which pay no pipeline set-up
per call (building a tf.data pipeline cost ~120 ms per call, against ~3 ms for the model on one
sentence)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ner.data.conll import Sentence
from ner.data.documents import Context
from ner.data.schemes import convert_tags

# Sentences of similar length are batched together so that little time goes to padding.
BUCKET_BOUNDARIES = (8, 12, 16, 20, 25, 30, 40, 50, 70)


CONTEXT_KEYS = ("left_context", "right_context")


def context_rows(contexts: Sequence[Context] | None, count: int) -> dict[str, list[tuple[str, ...]]]:
    """Each of CONTEXT_KEYS -> per sentence its words on that side (none without contexts)."""
    return {key: [context[side] for context in contexts] if contexts is not None else [()] * count
            for side, key in enumerate(CONTEXT_KEYS)}


def no_context(count: int) -> dict[str, np.ndarray]:
    """The context arrays of `count` sentences tagged alone (each its own document)."""
    return {key: np.zeros((count, 0), dtype=object) for key in CONTEXT_KEYS}


def padded_batch(sentences: Sequence[Sentence], feature_columns: Sequence[int],
                 contexts: Sequence[Context] | None = None) -> dict[str, np.ndarray]:
    """{"words": [B, T], "lengths": int32 [B], "features": [B, T, F], "left_context": [B, C],
    "right_context": [B, C']} as numpy arrays of str, '' past each sentence's (or context's) end:
    what every form of the model's predict takes. Without contexts the context arrays are [B, 0]."""
    lengths = np.array([len(sentence) for sentence in sentences], np.int32)
    width = int(lengths.max(initial=0))
    words = np.full((len(sentences), width), "", dtype=object)
    features = np.full((len(sentences), width, len(feature_columns)), "", dtype=object)
    for row, sentence in enumerate(sentences):
        words[row, :len(sentence)] = sentence.words
        if feature_columns:
            features[row, :len(sentence)] = [[token[c] for c in feature_columns] for token in sentence.columns]
    batch = {"words": words, "lengths": lengths, "features": features}
    for key, rows in context_rows(contexts, len(sentences)).items():
        batch[key] = np.full((len(sentences), max(map(len, rows), default=0)), "", dtype=object)
        for row, context_words in enumerate(rows):
            batch[key][row, :len(context_words)] = context_words
    return batch


def make_dataset(sentences: Sequence[Sentence], feature_columns: Sequence[int], batch_size: int,
                 shuffle_seed: int, tag_scheme: tuple[str, str] | None = None,
                 contexts: Sequence[Context] | None = None):
    """Training batches: a tf.data pipeline of padded batches {"words", "lengths", "features"
    [B, T, F], "left_context", "right_context", "tags"?}, shuffled with shuffle_seed and bucketed
    by length. With tag_scheme=(source, target) the batches carry the gold tags converted to the
    target scheme; without contexts the context columns are [B, 0]."""
    import tensorflow as tf  # only the batching needs TensorFlow

    lengths = [len(sentence) for sentence in sentences]

    def ragged(flat_values, inner_shape=()):
        values = tf.constant(np.array(flat_values, dtype=object).reshape((sum(lengths),) + inner_shape), tf.string)
        return tf.RaggedTensor.from_row_lengths(values, tf.constant(lengths, tf.int64))

    # Whole columns become tensors at once: no Python runs per sentence while batching.
    columns = {"words": ragged([w for s in sentences for w in s.words]),
               "features": ragged([[token[c] for c in feature_columns] for s in sentences for token in s.columns],
                                  (len(feature_columns),))}
    for key, rows in context_rows(contexts, len(sentences)).items():
        values = tf.constant(np.array([w for row in rows for w in row], dtype=object).reshape(-1), tf.string)
        columns[key] = tf.RaggedTensor.from_row_lengths(values, tf.constant([len(row) for row in rows], tf.int64))
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
