"""The tagging head run in numpy on emission scores, for the Python frozen loader
(ner.serving.loaders.FrozenTagger) and the ONNX tagger (ner/serving/onnx_tagger.py): the graph's
Viterbi and forward-backward loops cost about 0.6 ms of per-op overhead for one sentence of
CoNLL-2003's median length, these about 0.2 ms, almost all numpy's cost per call (about 12 us a
word: a few calls per step). Same arithmetic as ner/model/heads/crf.py and softmax.py (and
inference/cc/head.cc), so the tags are the graph's.
"""
from __future__ import annotations

import numpy as np

# Messages are rescaled at most this many steps apart, with at most 10**MAX_GROWTH_DIGITS of growth
# in between, and recomputed rescaling every step when a sum falls below TINY (float64 reaches 1e-308).
RESCALE_EVERY = 8
MAX_GROWTH_DIGITS = 200
TINY = 1e-200


class NumpyHead:
    def __init__(self, description: dict):
        """description: serving.json's "head" (ner.serving.artifacts.head_description)."""
        self.crf = description["type"] == "crf"
        self.tag_names = np.array([""] + [t.encode() for t in description["tags"]], dtype=object)  # index 0: padding
        if self.crf:
            self.transitions = np.asarray(description["transitions"], np.float32)
            self.start = np.asarray(description["start"], np.float32)
            self.end = np.asarray(description["end"], np.float32)
            # Probability-space potentials for the marginals; forbidden moves become exact zeros.
            self.transition_weights = np.exp(self.transitions.astype(np.float64))
            self._transition_weights_t = np.ascontiguousarray(self.transition_weights.T)
            # Between rescalings a message grows at most N x the largest weight per step.
            growth = np.log10(len(self.start) * self.transition_weights.max())
            self._rescale_every = int(np.clip(MAX_GROWTH_DIGITS // max(growth, 1.0), 1, RESCALE_EVERY))

    def predict(self, emissions: np.ndarray, lengths: np.ndarray) -> dict:
        """emissions [B, T, N] float32 -> {"tags": [B, T] IOB2 bytes ('' past each length), "confidence": [B, T]}.
        Each sentence's arithmetic is what it would be alone. The rows are taken longest first and
        time-major, so that the sentences still running at step t are the first few rows: a step
        costs a few numpy calls, whatever the batch."""
        batch, steps, _ = emissions.shape
        lengths = np.asarray(lengths, np.int64)
        if not self.crf:
            ids = emissions.argmax(axis=2)
            shifted = np.exp(emissions.astype(np.float64) - emissions.max(axis=2, keepdims=True))
            confidence = (1.0 / shifted.sum(axis=2)).astype(np.float32)
            real = np.arange(steps) < lengths[:, None]
            return {"tags": self.tag_names[np.where(real, ids + 1, 0)], "confidence": np.where(real, confidence, 0)}
        order = np.argsort(-lengths, kind="stable")
        sorted_lengths = lengths[order]
        by_time = emissions[order].transpose(1, 0, 2)  # [T, B, N], longest sentence first
        running = (np.arange(steps)[:, None] < sorted_lengths).sum(axis=1).tolist()  # sentences at each step
        paths = self._viterbi(by_time, running, sorted_lengths.tolist())
        # Every (step, row, tag) of the paths, flat: one gather of the marginals, one scatter each.
        steps_at = [t for path in paths for t in range(len(path))]
        rows_at = [row for row, path in enumerate(paths) for _ in path]
        tags_at = [tag for path in paths for tag in path]
        chosen = self._marginals(by_time, running)[steps_at, rows_at, tags_at]
        tag_ids = np.zeros((batch, steps), np.int64)  # 1 + tag id; 0 = padding
        confidence = np.zeros((batch, steps), np.float32)
        original_rows = order[rows_at]
        tag_ids[original_rows, steps_at] = np.array(tags_at, np.int64) + 1
        confidence[original_rows, steps_at] = chosen
        return {"tags": self.tag_names[tag_ids], "confidence": confidence}

    def _viterbi(self, by_time: np.ndarray, running: list[int], lengths: list[int]) -> list[list[int]]:
        """float32 and the graph's order of additions: the same path wins, ties to the lowest id ->
        each row's path (tag ids)."""
        score = self.start + by_time[0]
        finals = np.empty_like(score)  # each row's score at its last word
        backpointers = [None]
        for t in range(1, len(running)):
            k = running[t]
            if k < len(score):  # rows ended at t - 1
                finals[k:len(score)] = score[k:]
                score = score[:k]
            candidates = score[:, :, None] + self.transitions  # [k, previous, next]
            backpointers.append(candidates.argmax(axis=1).tolist())
            score = candidates.max(axis=1)
            score += by_time[t, :k]
        finals[:len(score)] = score
        paths = []
        for row, (length, last) in enumerate(zip(lengths, (finals + self.end).argmax(axis=1).tolist())):
            path = [last] * length
            for t in range(length - 1, 0, -1):
                last = backpointers[t][row][last]
                path[t - 1] = last
            paths.append(path)
        return paths

    def _marginals(self, by_time: np.ndarray, running: list[int], every: int = 0) -> np.ndarray:
        """Forward-backward in probability space (float64): p(tag_t) is proportional to
        alpha_t * beta_t, so each step's scale cancels in the final normalisation, and messages
        are rescaled (to a sum of 1) only every few steps, as often as the transition weights
        need to stay far from overflow (`every`, 0: RESCALE_EVERY). Should a message come near
        underflow between rescalings (scores hundreds apart), the batch is computed again
        rescaling at every step. -> [T, B, N]; past a sentence's end, filler."""
        every = every or self._rescale_every
        steps = len(running)
        emission_weights = np.exp(by_time.astype(np.float64) - by_time.max(axis=2, keepdims=True))
        alphas = np.ones_like(emission_weights)
        betas = np.empty_like(emission_weights)
        start = self.start.astype(np.float64)
        alpha = np.exp(start - start.max()) * emission_weights[0]
        alphas[0] = alpha
        for t in range(1, steps):
            k = running[t]
            if k < len(alpha):
                alpha = alpha[:k]
            alpha = alpha.dot(self.transition_weights)
            alpha *= emission_weights[t, :k]
            if t % every == 0 and not self._rescaled(alpha, every):
                return self._marginals(by_time, running, every=1)
            alphas[t, :k] = alpha
        end = self.end.astype(np.float64)
        # Every row starts from `last` at its own end; the first running[t + 1] rows go on to t.
        beta = np.tile(np.exp(end - end.max()), (by_time.shape[1], 1))
        betas[steps - 1] = beta
        for t in range(steps - 2, -1, -1):
            k = running[t + 1]
            following = (emission_weights[t + 1, :k] * beta[:k]).dot(self._transition_weights_t)
            if t % every == 0 and not self._rescaled(following, every):
                return self._marginals(by_time, running, every=1)
            beta[:k] = following
            betas[t] = beta
        joint = alphas * betas
        return joint / joint.sum(axis=2, keepdims=True)

    @staticmethod
    def _rescaled(messages: np.ndarray, every: int) -> bool:
        """Rescales each row to a sum of 1 in place -> False, leaving them, where a row came near
        underflow between rescalings (rescaling every step, there is nothing better to do)."""
        sums = messages.dot(np.ones(messages.shape[1]))
        if every > 1 and not sums.min() > TINY:
            return False
        messages /= sums[:, None]
        return True
