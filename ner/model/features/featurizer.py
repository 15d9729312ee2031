"""Strings -> ids inside the graph: words, characters, feature columns, word shapes, tags;
and decoded tag ids -> IOB2 tag strings, whatever scheme the model was trained in.

The vocabularies are constants of the graph (tf_ner's way), so a trained, exported or frozen
model takes words and returns tags and no caller re-implements the id mapping.
"""
import tensorflow as tf

from ner.data.id_rules import SHAPE_PATTERNS, char_code_points, iob2_output
from ner.data.schemes import tag_names
from ner.data.vocabulary import RESERVED, UNKNOWN_ID, Vocabulary


def _table(keys: list, first_id: int, padding="") -> tf.lookup.StaticHashTable:
    """keys[i] -> first_id + i; padding -> 0; anything else -> 1 (unknown)."""
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant([padding] + list(keys)), tf.constant([0] + list(range(first_id, first_id + len(keys))), tf.int32))
    return tf.lookup.StaticHashTable(initializer, default_value=UNKNOWN_ID)


class Featurizer(tf.Module):
    def __init__(self, vocab: Vocabulary, tag_scheme: str, feature_columns: list[int], max_word_length: int,
                 name: str = "featurizer"):
        super().__init__(name=name)
        self.lowercase = bool(vocab.meta["lowercase"])
        self.max_word_length = max_word_length
        self.word_table = _table(vocab.words, RESERVED)
        self.char_table = _table(char_code_points(vocab.chars), RESERVED, padding=0)
        self.column_tables = [_table(vocab.columns[c], RESERVED) for c in feature_columns]
        self.tag_scheme = tag_scheme
        self.tag_names = tag_names(vocab.entity_types, tag_scheme)
        # Tags have no padding/unknown rows: an unknown tag reads as O (id 0).
        self.tag_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(self.tag_names),
                                                tf.range(len(self.tag_names), dtype=tf.int32)),
            default_value=0)
        # Output is IOB2 (ner.data.id_rules.iob2_output).
        output = iob2_output(vocab.entity_types, tag_scheme)
        self.iob2_names = tf.constant(output["names"])
        self.iob2_ids = tf.constant(output["ids"])
        self.kind_ids = tf.constant(output["kinds"])
        self.chunk_start_ids = tf.constant(output["chunk_starts"])

    def word_ids(self, words: tf.Tensor) -> tf.Tensor:
        return self.word_table.lookup(tf.strings.lower(words, encoding="utf-8") if self.lowercase else words)

    def char_ids(self, words: tf.Tensor) -> tf.Tensor:
        """[B, T] -> [B, T, L], L = the batch's longest word, at most max_word_length.

        Raw ops on code points: tf.strings.unicode_split and RaggedTensor.to_tensor build the same
        ids from about 50 small ops, whose overhead counts when serving one sentence (invalid UTF-8
        reads as U+FFFD in both)."""
        shape = tf.shape(words)
        splits, codepoints = tf.raw_ops.UnicodeDecode(input=tf.reshape(words, [-1]), input_encoding="UTF-8",
                                                      errors="replace", replacement_char=0xFFFD,
                                                      Tsplits=tf.int32)
        longest = tf.minimum(tf.maximum(tf.reduce_max(splits[1:] - splits[:-1]), 0), self.max_word_length)
        chars = tf.raw_ops.RaggedTensorToTensor(  # pads with 0 and cuts words at `longest`
            shape=tf.stack([tf.size(words), longest]), values=codepoints,
            default_value=0, row_partition_tensors=[splits], row_partition_types=["ROW_SPLITS"])
        return tf.reshape(self.char_table.lookup(chars), tf.concat([shape, [longest]], axis=0))

    def column_ids(self, features: tf.Tensor) -> list[tf.Tensor]:
        """features [B, T, F] of the configured columns -> F tensors [B, T]."""
        return [table.lookup(features[:, :, i]) for i, table in enumerate(self.column_tables)]

    @staticmethod
    def shape_ids(words: tf.Tensor) -> tf.Tensor:
        """0 for padding, 1 + the first matching SHAPE_PATTERNS entry, or the last id for anything else."""
        ids = tf.fill(tf.shape(words), len(SHAPE_PATTERNS) + 1)
        for i in reversed(range(len(SHAPE_PATTERNS))):
            ids = tf.where(tf.strings.regex_full_match(words, SHAPE_PATTERNS[i]), i + 1, ids)
        return tf.where(tf.equal(words, ""), 0, ids)

    def tag_ids(self, tags: tf.Tensor) -> tf.Tensor:
        return self.tag_table.lookup(tags)

    def iob2_tags(self, ids: tf.Tensor) -> tf.Tensor:
        """Decoded model tag ids [B, T] -> IOB2 tag strings."""
        iob2 = tf.gather(self.iob2_ids, ids)
        if self.tag_scheme == "iob1":
            kinds = tf.gather(self.kind_ids, ids)
            previous = tf.pad(kinds[:, :-1], [[0, 0], [1, 0]])
            opens = (kinds > 0) & tf.not_equal(kinds, previous)
            iob2 = tf.where(opens, tf.gather(self.chunk_start_ids, ids), iob2)
        return tf.gather(self.iob2_names, iob2)
