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

    def predict(self, emissions: np.ndarray, lengths: np.ndarray) -> dict:
        """emissions [B, T, N] float32 -> {"tags": [B, T] IOB2 bytes ('' past each length), "confidence": [B, T]}.
        The whole batch at once, step by step: each sentence's arithmetic is what it would be alone."""
        batch, steps, _ = emissions.shape
        lengths = np.asarray(lengths, np.int64)
        real = np.arange(steps) < lengths[:, None]
        if not self.crf:
            ids = emissions.argmax(axis=2)
            shifted = np.exp(emissions.astype(np.float64) - emissions.max(axis=2, keepdims=True))
            confidence = (1.0 / shifted.sum(axis=2)).astype(np.float32)
        else:
            ids = self._viterbi(emissions, lengths)
            marginals = self._marginals(emissions, lengths)
            confidence = np.take_along_axis(marginals, ids[:, :, None], axis=2)[:, :, 0].astype(np.float32)
        tag_ids = np.where(real, ids + 1, 0)  # 1 + tag id; 0 = padding
        return {"tags": self.tag_names[tag_ids], "confidence": np.where(real, confidence, np.float32(0))}

    def _viterbi(self, emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """float32 and the graph's order of additions: the same path wins, ties to the lowest id. A
        sentence's score stops changing after its last word."""
        batch, steps, _ = emissions.shape
        rows = np.arange(batch)
        score = self.start + emissions[:, 0]
        backpointers = np.zeros(emissions.shape, np.int64)
        for t in range(1, steps):
            candidates = score[:, :, None] + self.transitions  # [B, previous, next]
            backpointers[:, t] = candidates.argmax(axis=1)
            score = np.where((t < lengths)[:, None], candidates.max(axis=1) + emissions[:, t], score)
        ids = np.zeros((batch, steps), np.int64)
        current = (score + self.end).argmax(axis=1)
        ids[rows, np.maximum(lengths - 1, 0)] = current
        for t in range(steps - 1, 0, -1):
            inside = t < lengths
            current = np.where(inside, backpointers[rows, t, current], current)
            ids[:, t - 1] = np.where(inside, current, ids[:, t - 1])
        return ids

    def _marginals(self, emissions: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Forward-backward in probability space (float64), each message rescaled to a maximum of 1:
        p(tag_t) is proportional to alpha_t * beta_t, so the scales cancel in the normalisation.
        Past a sentence's end its messages are left as they are (never read)."""
        steps = emissions.shape[1]
        emission_weights = np.exp(emissions.astype(np.float64) - emissions.max(axis=2, keepdims=True))
        alphas = np.empty_like(emission_weights)
        betas = np.empty_like(emission_weights)
        start = self.start.astype(np.float64)
        alpha = np.exp(start - start.max()) * emission_weights[:, 0]
        alphas[:, 0] = alpha / alpha.max(axis=1, keepdims=True)
        for t in range(1, steps):
            alpha = (alphas[:, t - 1] @ self.transition_weights) * emission_weights[:, t]
            alphas[:, t] = alpha / alpha.max(axis=1, keepdims=True)
        end = self.end.astype(np.float64)
        last = np.exp(end - end.max())
        beta = np.broadcast_to(last, alphas[:, 0].shape)
        for t in range(steps - 1, -1, -1):
            if t < steps - 1:
                message = (emission_weights[:, t + 1] * beta) @ self.transition_weights.T
                message = message / message.max(axis=1, keepdims=True)
                beta = np.where((t < lengths - 1)[:, None], message, beta)
            beta = np.where((t == lengths - 1)[:, None], last, beta)
            betas[:, t] = beta
        joint = alphas * betas
        return joint / joint.sum(axis=2, keepdims=True)
