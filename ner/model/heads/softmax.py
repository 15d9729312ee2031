"""Per-token softmax head with the same interface as the CRF head."""
import tensorflow as tf


class SoftmaxHead(tf.Module):
    def __init__(self, num_tags: int, name: str = "softmax"):
        super().__init__(name=name)
        self.num_tags = num_tags

    def log_likelihood(self, emissions, tags, lengths):
        """Sum of each sentence's token log-probabilities: [B]."""
        mask = tf.sequence_mask(lengths, tf.shape(emissions)[1], dtype=tf.float32)
        log_probs = tf.nn.log_softmax(emissions, axis=-1)
        gold = tf.gather(log_probs, tags, batch_dims=2)
        return tf.reduce_sum(gold * mask, axis=1)

    def decode(self, emissions, lengths):
        mask = tf.sequence_mask(lengths, tf.shape(emissions)[1])
        tags = tf.where(mask, tf.argmax(emissions, axis=-1, output_type=tf.int32), 0)
        best = tf.reduce_max(tf.nn.log_softmax(emissions, axis=-1), axis=-1)
        return tags, tf.reduce_sum(tf.where(mask, best, 0.0), axis=1)

    def marginals(self, emissions, lengths):
        return tf.nn.softmax(emissions, axis=-1)

    posteriors = marginals  # the head interface's name for "per-token tag probabilities, fastest way"

    def description(self) -> dict:
        """What a runner outside the graph needs to decode as decode() does: an argmax per token."""
        return {"type": "softmax"}
