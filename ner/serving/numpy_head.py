"""The tagging head run in numpy on a frozen graph's emission scores, for the Python frozen
loader (ner.serving.loaders.FrozenTagger): the graph's Viterbi and forward-backward loops cost a few
hundred microseconds of per-op overhead for one sentence, these a few dozen. Same arithmetic
as ner/model/heads/crf.py and softmax.py (and inference/cc/head.cc), so the tags are the graph's.
"""
from __future__ import annotations

import numpy as np


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
            self._ones = np.ones(len(self.start))

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
        backpointers = [None]
        for t in range(1, len(running)):
            k = running[t]
            candidates = score[:k, :, None] + self.transitions  # [k, previous, next]
            backpointers.append(candidates.argmax(axis=1).tolist())
            score[:k] = candidates.max(axis=1) + by_time[t, :k]
        paths = []
        for row, (length, last) in enumerate(zip(lengths, (score + self.end).argmax(axis=1).tolist())):
            path = [last] * length
            for t in range(length - 1, 0, -1):
                last = backpointers[t][row][last]
                path[t - 1] = last
            paths.append(path)
        return paths

    def _marginals(self, by_time: np.ndarray, running: list[int]) -> np.ndarray:
        """Forward-backward in probability space (float64), each message rescaled to a sum of 1 (a
        product with ones: numpy's reductions cost more on such small arrays): p(tag_t) is
        proportional to alpha_t * beta_t, so the scales cancel in the normalisation.
        -> [T, B, N]; past a sentence's end, filler."""
        steps = len(running)
        emission_weights = np.exp(by_time.astype(np.float64) - by_time.max(axis=2, keepdims=True))
        alphas = np.ones_like(emission_weights)
        betas = np.ones_like(emission_weights)
        start = self.start.astype(np.float64)
        alpha = np.exp(start - start.max()) * emission_weights[0]
        alphas[0] = alpha / alpha.max(axis=1, keepdims=True)
        for t in range(1, steps):
            k = running[t]
            alpha = alphas[t - 1, :k].dot(self.transition_weights) * emission_weights[t, :k]
            alphas[t, :k] = alpha / alpha.dot(self._ones)[:, None]
        end = self.end.astype(np.float64)
        last = np.exp(end - end.max())
        for t in range(steps - 1, -1, -1):
            # Rows whose sentence ends at t start from `last`; the first `following` go on from t + 1.
            following = running[t + 1] if t + 1 < steps else 0
            betas[t, following:running[t]] = last
            if following:
                beta = (emission_weights[t + 1, :following] * betas[t + 1, :following]).dot(self.transition_weights.T)
                betas[t, :following] = beta / beta.dot(self._ones)[:, None]
        joint = alphas * betas
        return joint / joint.sum(axis=2, keepdims=True)
