"""Linear-chain CRF head as tf.Module + tf.Variable (loads in every SavedModel API).

Design:
* Inputs are batch-major ([B, T, N] emissions); the recurrences run time-major in
  tf.while_loop, reading per-step emissions from a TensorArray so that the gradient
  stays O(T) (slicing a tensor inside the loop would build a [T, B, N] gradient per step).
* Each step is one broadcast add, [B, N, 1] + [N, N], and one reduction over the
  previous tag (logsumexp for forward/backward, max/argmax for Viterbi).
* Padding: at steps t >= length the state is carried unchanged (tf.where), so a
  sentence's results do not depend on the rest of the batch or on the padded width.
* Constraints are a constant, finite penalty (DISALLOWED_PENALTY) added once per call
  to the transition/start/end scores: exp(-1e4) underflows to 0, so forbidden paths
  drop out of the partition function and of Viterbi, while logsumexp never sees -inf
  (no NaN gradients).
* Step 0 is handled before each loop and TensorArrays have size T, so T == 1 works
  with unknown shapes (tf.scan cannot stack an empty result of unknown batch size).
"""
import numpy as np
import tensorflow as tf

from ner.model.layers.initializers import uniform

DISALLOWED_PENALTY = -1e4
# Padded batch size (sentences x time) up to which posteriors() takes marginals_parallel.
PARALLEL_MARGINALS_MAX_TOKENS = 512
INIT_LIMIT = 0.1


def _penalty(allowed, shape):
    """Constant additive penalty: 0 where allowed, DISALLOWED_PENALTY elsewhere; None if unconstrained."""
    if allowed is None:
        return None
    allowed = np.asarray(allowed, dtype=bool)
    if allowed.shape != shape:
        raise ValueError(f"constraint must have shape {shape}, got {allowed.shape}")
    return tf.constant(np.where(allowed, 0.0, DISALLOWED_PENALTY), dtype=tf.float32)


def _penalised(variable, penalty):
    # One read per call: a variable captured by a loop body would be re-read every step.
    scores = tf.convert_to_tensor(variable)
    return scores if penalty is None else scores + penalty


def _time_major(emissions):
    """-> (emissions [T, B, N], the same as a TensorArray for per-step reads inside loops)."""
    emissions_tm = tf.transpose(emissions, [1, 0, 2])
    # Eager TensorArrays forget read entries by default; marginals reads each step twice.
    steps = tf.TensorArray(emissions.dtype, size=tf.shape(emissions_tm)[0], clear_after_read=False)
    return emissions_tm, steps.unstack(emissions_tm)


def _logsumexp(x, axis):
    """logsumexp for finite inputs; fewer ops than tf.reduce_logsumexp, which also guards against inf."""
    peak = tf.stop_gradient(tf.reduce_max(x, axis=axis, keepdims=True))
    return tf.math.log(tf.reduce_sum(tf.exp(x - peak), axis=axis)) + tf.squeeze(peak, axis)


def _scaled_exp(scores):
    """exp(scores) divided by its largest entry along the last axis."""
    return tf.exp(scores - tf.reduce_max(scores, axis=-1, keepdims=True))


def _matrix_scan(elements, reverse: bool):
    """Inclusive prefix products (suffix products if reverse) of matrices [B, T, N, N] along the
    time axis by doubling (Hillis-Steele): after the pass with offset d, element t is the product
    of the 2d elements ending (starting) at t; ceil(log2 T) passes. Each product is divided by
    its largest entry (the messages are needed only up to a factor)."""
    num_steps = tf.shape(elements)[1]

    def double(offset, products):
        product = tf.matmul(products[:, :num_steps - offset], products[:, offset:])
        product /= tf.reduce_max(product, axis=[2, 3], keepdims=True)
        if reverse:
            products = tf.concat([product, products[:, num_steps - offset:]], axis=1)
        else:
            products = tf.concat([products[:, :offset], product], axis=1)
        return offset * 2, products

    _, products = tf.while_loop(lambda offset, _: offset < num_steps, double, (1, elements))
    return products


class CRF(tf.Module):
    """Linear-chain CRF head.

    Shapes: emissions [B, T, N] float32, tags [B, T] int32, lengths [B] int32 (>= 1).
    Tags at positions >= length are ignored and may hold any value (e.g. -1).
    """

    def __init__(self, num_tags: int, allowed=None, allowed_start=None, allowed_end=None, name: str = "crf"):
        """allowed: optional bool (N, N) indexed [prev, next]; allowed_start / allowed_end: optional bool (N,)."""
        super().__init__(name=name)
        self.num_tags = num_tags
        self.transitions = tf.Variable(uniform([num_tags, num_tags], INIT_LIMIT), name="transitions")
        self.start = tf.Variable(uniform([num_tags], INIT_LIMIT), name="start")
        self.end = tf.Variable(uniform([num_tags], INIT_LIMIT), name="end")
        self._transition_penalty = _penalty(allowed, (num_tags, num_tags))
        self._start_penalty = _penalty(allowed_start, (num_tags,))
        self._end_penalty = _penalty(allowed_end, (num_tags,))

    def log_likelihood(self, emissions, tags, lengths):
        """-> [B] log p(tags | emissions)."""
        transitions, start, end = self.scores()
        gold = self._path_score(emissions, tags, lengths, transitions, start, end)
        emissions_tm, emissions_ta = _time_major(emissions)
        final_alpha, _ = self._forward(emissions_tm, emissions_ta, lengths[:, None], transitions, start,
                                       keep_history=False)
        return gold - _logsumexp(final_alpha + end, axis=1)

    def decode(self, emissions, lengths):
        """Viterbi -> (tags [B, T] int32, 0 beyond each length; scores [B] float32 of the best path)."""
        transitions, start, end = self.scores()
        emissions_tm, emissions_ta = _time_major(emissions)
        num_steps = tf.shape(emissions_tm)[0]
        lengths_col = lengths[:, None]
        # Padded steps point back to the same tag, so backtracking passes through them unchanged.
        identity = tf.range(self.num_tags, dtype=tf.int32)

        def viterbi_step(t, score, backpointers):
            candidates = score[:, :, None] + transitions  # [B, prev, next]
            valid = t < lengths_col
            best_prev = tf.where(valid, tf.argmax(candidates, axis=1, output_type=tf.int32), identity)
            score = tf.where(valid, tf.reduce_max(candidates, axis=1) + emissions_ta.read(t), score)
            return t + 1, score, backpointers.write(t, best_prev)

        # Index 0 of the backpointers is never written nor read.
        backpointers = tf.TensorArray(tf.int32, size=num_steps)
        _, score, backpointers = tf.while_loop(
            lambda t, *_: t < num_steps, viterbi_step, (1, start + emissions_tm[0], backpointers))
        final_score = score + end
        best_scores = tf.reduce_max(final_score, axis=1)
        last_tags = tf.argmax(final_score, axis=1, output_type=tf.int32)

        def backtrack_step(t, tag, path):
            tag = tf.gather(backpointers.read(t), tag, batch_dims=1)
            return t - 1, tag, path.write(t - 1, tag)

        path = tf.TensorArray(tf.int32, size=num_steps).write(num_steps - 1, last_tags)
        _, _, path = tf.while_loop(lambda t, *_: t > 0, backtrack_step, (num_steps - 1, last_tags, path))
        tags = tf.transpose(path.stack())
        return tf.where(tf.sequence_mask(lengths, num_steps), tags, 0), best_scores

    def marginals(self, emissions, lengths):
        """Forward-backward -> [B, T, N] posterior p(tag_t | emissions); rows beyond length are finite filler.
        In float64: log messages grow with the sentence (and a forbidden move adds -1e4), and
        float32's rounding of them was up to 4e-4 of a confidence on CoNLL-2003 test."""
        transitions, start, end = (tf.cast(scores, tf.float64) for scores in self.scores())
        emissions_tm, emissions_ta = _time_major(tf.cast(emissions, tf.float64))
        lengths_col = lengths[:, None]
        final_alpha, alphas = self._forward(emissions_tm, emissions_ta, lengths_col, transitions, start,
                                            keep_history=True)
        betas = self._backward(emissions_tm, emissions_ta, lengths_col, transitions, end)
        log_partition = _logsumexp(final_alpha + end, axis=1)
        log_marginals = alphas + betas - log_partition[None, :, None]
        return tf.cast(tf.exp(tf.transpose(log_marginals, [1, 0, 2])), tf.float32)

    def posteriors(self, emissions, lengths):
        """marginals() computed the fastest way for the batch: a sentence or a few take the
        O(log T)-step marginals_parallel, big batches the O(T)-step loops, which do less arithmetic."""
        return tf.cond(tf.size(emissions) <= PARALLEL_MARGINALS_MAX_TOKENS * self.num_tags,
                       lambda: self.marginals_parallel(emissions, lengths),
                       lambda: self.marginals(emissions, lengths))

    def marginals_parallel(self, emissions, lengths):
        """marginals() in O(log T) loop steps instead of O(T), for tagging a sentence or a few:
        there the cost is per-op overhead (a step of the forward or backward loop runs ~45 ops),
        not arithmetic. It costs O(T N^3 log T) arithmetic, so large batches keep marginals().

        The forward message at t is row 0 of the product of per-step potential matrices up to t
        (element 0 holds exp(start + emission 0) in every row); the backward message is column 0
        of the product from step t + 1 on (the last element holds exp(end) in every column); past
        a sentence's length the potentials are the identity, so messages carry over as in
        marginals(). Products are taken by doubling (_matrix_scan) in float64, each rescaled by its
        maximum: a message is needed only up to a factor, which the final normalisation of
        alpha * beta per step removes, so no log-scale is tracked and nothing overflows.
        """
        transitions, start, end = self.scores()
        emissions = tf.cast(emissions, tf.float64)
        batch, num_steps = tf.shape(emissions)[0], tf.shape(emissions)[1]
        square = [batch, self.num_tags, self.num_tags]
        step_scores = tf.cast(transitions, tf.float64) + emissions[:, 1:, None, :]  # [B, T-1, prev, next]
        potentials = tf.exp(step_scores - tf.reduce_max(step_scores, axis=[2, 3], keepdims=True))
        valid = tf.sequence_mask(lengths, num_steps)[:, 1:, None, None]
        potentials = tf.where(valid, potentials, tf.eye(self.num_tags, dtype=tf.float64))
        first = tf.broadcast_to(_scaled_exp(tf.cast(start, tf.float64) + emissions[:, 0])[:, None, :], square)
        last = tf.broadcast_to(_scaled_exp(tf.cast(end, tf.float64))[None, :, None], square)
        alphas = _matrix_scan(tf.concat([first[:, None], potentials], axis=1), reverse=False)[:, :, 0, :]
        betas = _matrix_scan(tf.concat([potentials, last[:, None]], axis=1), reverse=True)[:, :, :, 0]
        joint = alphas * betas
        return tf.cast(joint / tf.reduce_sum(joint, axis=2, keepdims=True), tf.float32)

    def scores(self):
        """-> (transitions, start, end) with the constraint penalties added."""
        return (_penalised(self.transitions, self._transition_penalty),
                _penalised(self.start, self._start_penalty),
                _penalised(self.end, self._end_penalty))

    def description(self) -> dict:
        """What a runner outside the graph needs to decode as decode() and posteriors() do."""
        transitions, start, end = (scores.numpy().tolist() for scores in self.scores())
        return {"type": "crf", "transitions": transitions, "start": start, "end": end}

    def _path_score(self, emissions, tags, lengths, transitions, start, end):
        """[B] unnormalised score of the given tag paths."""
        mask = tf.sequence_mask(lengths, tf.shape(tags)[1])
        tags = tf.where(mask, tags, 0)  # keep gathers in range whatever the padding holds
        emission_score = tf.reduce_sum(tf.where(mask, tf.gather(emissions, tags, batch_dims=2), 0.0), axis=1)
        pair_index = tags[:, :-1] * self.num_tags + tags[:, 1:]
        pair_score = tf.gather(tf.reshape(transitions, [-1]), pair_index)
        transition_score = tf.reduce_sum(tf.where(mask[:, 1:], pair_score, 0.0), axis=1)
        last_tags = tf.gather(tags, lengths - 1, batch_dims=1)
        return tf.gather(start, tags[:, 0]) + emission_score + transition_score + tf.gather(end, last_tags)

    @staticmethod
    def _forward(emissions_tm, emissions_ta, lengths_col, transitions, start, keep_history):
        """Forward algorithm -> (alpha at each sentence's last step [B, N], all alphas [T, B, N] or None).

        alpha_t[j] = log sum over prefixes ending in tag j at step t (emission t included).
        """
        num_steps = tf.shape(emissions_tm)[0]
        alpha = start + emissions_tm[0]
        history = (tf.TensorArray(emissions_tm.dtype, size=num_steps).write(0, alpha),) if keep_history else ()

        def forward_step(t, alpha, *history):
            scores = _logsumexp(alpha[:, :, None] + transitions, axis=1) + emissions_ta.read(t)
            alpha = tf.where(t < lengths_col, scores, alpha)
            return (t + 1, alpha) + tuple(alphas.write(t, alpha) for alphas in history)

        _, alpha, *history = tf.while_loop(lambda t, *_: t < num_steps, forward_step, (1, alpha) + history)
        return alpha, (history[0].stack() if keep_history else None)

    @staticmethod
    def _backward(emissions_tm, emissions_ta, lengths_col, transitions, end):
        """Backward algorithm -> betas [T, B, N]: log sum over suffixes after step t given tag j at t."""
        num_steps = tf.shape(emissions_tm)[0]
        beta = tf.broadcast_to(end, tf.shape(emissions_tm)[1:])
        betas = tf.TensorArray(emissions_tm.dtype, size=num_steps).write(num_steps - 1, beta)

        def backward_step(t, beta, betas):
            # beta_{t-1} from beta_t; beyond the last step beta stays `end`.
            scores = _logsumexp(transitions + (emissions_ta.read(t) + beta)[:, None, :], axis=2)
            beta = tf.where(t < lengths_col, scores, beta)
            return t - 1, beta, betas.write(t - 1, beta)

        _, _, betas = tf.while_loop(lambda t, *_: t > 0, backward_step, (num_steps - 1, beta, betas))
        return betas.stack()
