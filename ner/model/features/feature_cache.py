"""Frozen contextual features (BERT, ELMo) computed once per distinct sentence, then looked up.

Training reads the same sentences every epoch, and a frozen BERT or ELMo gives them the same
vectors every time: after the first epoch (and the first dev evaluation), a batch is only a
hash-table lookup. The table lives in the graph (tf.lookup.experimental.MutableHashTable,
key: the sentence's words and the word's position), so the step stays one tf.function.

It is never saved: the model keeps it outside the objects that checkpoints track, and only
the trainer turns it on (Tagger.cache_contextual_features); exported, frozen and inference
models compute their features every time. Memory: 4 bytes x (width + 1) per distinct token;
CoNLL-2003 train + dev (256k tokens) at 384 floats is about 0.4 GB.
"""
import tensorflow as tf

SEPARATOR = "\x1f"  # between the words of a sentence's key (a control character, never inside a word)


class FeatureCache:
    """Deliberately not a tf.Module: its table must stay out of checkpoints and SavedModels."""

    def __init__(self, width: int):
        self.width = width
        # The last value is a 1 that marks a stored entry (missing keys read as all zeros).
        self.table = tf.lookup.experimental.MutableHashTable(tf.string, tf.float32, tf.zeros([width + 1]),
                                                             name="feature_cache")

    @staticmethod
    def keys(words: tf.Tensor, lengths: tf.Tensor, context=None) -> tf.Tensor:
        """[B, T] -> [B, T]: the sentence's words (without its padding), the word's position and,
        for features that read it, the sentence's context (left and right words, '' padding)."""
        sentences = tf.strings.reduce_join(tf.RaggedTensor.from_tensor(words, lengths=lengths), axis=1,
                                           separator=SEPARATOR)
        if context is not None:
            left, right = (tf.strings.reduce_join(side, axis=1, separator=SEPARATOR) for side in context)
            sentences = tf.strings.join([left, sentences, right], separator="\x1d")
        positions = tf.strings.as_string(tf.range(tf.shape(words)[1]))
        return tf.strings.join([tf.broadcast_to(sentences[:, None], tf.shape(words)),
                                tf.broadcast_to(positions[None, :], tf.shape(words))], separator="\x1e")

    def __call__(self, words: tf.Tensor, lengths: tf.Tensor, compute, context=None) -> tf.Tensor:
        """compute() -> [B, T, width], run only when some word of the batch is not stored yet."""
        shape = tf.shape(words)
        real = tf.sequence_mask(lengths, shape[1])
        where = tf.where(real)
        keys = tf.gather_nd(self.keys(words, lengths, context), where)
        stored = self.table.lookup(keys)
        full_shape = tf.stack([tf.cast(shape[0], tf.int64), tf.cast(shape[1], tf.int64), self.width])

        def cached():
            return tf.scatter_nd(where, stored[:, :-1], full_shape)

        def computed():
            values = compute()
            found = tf.gather_nd(values, where)
            insert = self.table.insert(keys, tf.concat([found, tf.ones_like(found[:, :1])], axis=1))
            with tf.control_dependencies([insert]):
                return tf.identity(values)

        return tf.cond(tf.reduce_all(stored[:, -1] > 0.5), cached, computed)
