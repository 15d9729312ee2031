"""Strings -> ids inside the graph: words, characters, feature columns, word shapes, tags.

The vocabularies are constants of the graph (tf_ner's way), so a trained, exported or frozen
model takes words and returns tags and no caller re-implements the id mapping.
"""
import tensorflow as tf

from embvec import RESERVED, Vocabulary

# Word shapes for the casing feature; lowercased word vectors lose what these keep.
SHAPE_PATTERNS = ("[a-z]+", "[A-Z]+", "[A-Z][a-z]+", ".*[0-9].*", ".*[A-Za-z].*")


def _table(keys: list[str], first_id: int) -> tf.lookup.StaticHashTable:
    """keys[i] -> first_id + i; '' (padding) -> 0; anything else -> 1 (unknown)."""
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant([""] + list(keys)), tf.constant([0] + list(range(first_id, first_id + len(keys))), tf.int32))
    return tf.lookup.StaticHashTable(initializer, default_value=1)


class Featurizer(tf.Module):
    def __init__(self, vocab: Vocabulary, tag_names: list[str], feature_columns: list[int], max_word_length: int,
                 name: str = "featurizer"):
        super().__init__(name=name)
        self.lowercase = bool(vocab.meta["lowercase"])
        self.max_word_length = max_word_length
        self.word_table = _table(vocab.words, RESERVED)
        self.char_table = _table(vocab.chars, RESERVED)
        self.column_tables = [_table(vocab.columns[c], RESERVED) for c in feature_columns]
        # Tags have no padding/unknown rows: an unknown tag reads as O (id 0).
        self.tag_table = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(tag_names), tf.range(len(tag_names), dtype=tf.int32)),
            default_value=0)
        self.tag_names = tf.constant(tag_names)

    def word_ids(self, words: tf.Tensor) -> tf.Tensor:
        return self.word_table.lookup(tf.strings.lower(words, encoding="utf-8") if self.lowercase else words)

    def char_ids(self, words: tf.Tensor) -> tf.Tensor:
        """[B, T] -> [B, T, L], L = the batch's longest word, at most max_word_length."""
        chars = tf.strings.unicode_split(words, "UTF-8", errors="replace")
        longest = tf.minimum(tf.cast(chars.bounding_shape(axis=2), tf.int32), self.max_word_length)
        shape = tf.stack([tf.shape(words)[0], tf.shape(words)[1], longest])
        return self.char_table.lookup(chars.to_tensor(default_value="", shape=shape))

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

    def tag_strings(self, ids: tf.Tensor) -> tf.Tensor:
        return tf.gather(self.tag_names, ids)
