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
        """emissions [B, T, N] float32 -> {"tags": [B, T] IOB2 bytes ('' past each length), "confidence": [B, T]}."""
        batch, steps, _ = emissions.shape
        tag_ids = np.zeros((batch, steps), np.int64)  # 1 + tag id; 0 = padding
        confidence = np.zeros((batch, steps), np.float32)
        for b, length in enumerate(lengths):
            ids, probabilities = self._decode(emissions[b, :length])
            tag_ids[b, :length] = ids + 1
            confidence[b, :length] = probabilities
        return {"tags": self.tag_names[tag_ids], "confidence": confidence}

    def _decode(self, emissions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self.crf:
            ids = emissions.argmax(axis=1)
            shifted = np.exp(emissions.astype(np.float64) - emissions.max(axis=1, keepdims=True))
            return ids, (1.0 / shifted.sum(axis=1)).astype(np.float32)
        ids = self._viterbi(emissions)
        marginals = self._marginals(emissions)
        return ids, marginals[np.arange(len(ids)), ids].astype(np.float32)

    def _viterbi(self, emissions: np.ndarray) -> np.ndarray:
        """float32 and the graph's order of additions: the same path wins, ties to the lowest id."""
        length = len(emissions)
        score = self.start + emissions[0]
        backpointers = np.zeros((length, len(score)), np.int64)
        for t in range(1, length):
            candidates = score[:, None] + self.transitions  # [previous, next]
            backpointers[t] = candidates.argmax(axis=0)
            score = candidates.max(axis=0) + emissions[t]
        ids = np.empty(length, np.int64)
        ids[-1] = (score + self.end).argmax()
        for t in range(length - 1, 0, -1):
            ids[t - 1] = backpointers[t, ids[t]]
        return ids

    def _marginals(self, emissions: np.ndarray) -> np.ndarray:
        """Forward-backward in probability space (float64), each message rescaled to a maximum of 1:
        p(tag_t) is proportional to alpha_t * beta_t, so the scales cancel in the normalisation."""
        length = len(emissions)
        emission_weights = np.exp(emissions.astype(np.float64) - emissions.max(axis=1, keepdims=True))
        alphas = np.empty_like(emission_weights)
        betas = np.empty_like(emission_weights)
        start = self.start.astype(np.float64)
        alpha = np.exp(start - start.max()) * emission_weights[0]
        alphas[0] = alpha / alpha.max()
        for t in range(1, length):
            alpha = (alphas[t - 1] @ self.transition_weights) * emission_weights[t]
            alphas[t] = alpha / alpha.max()
        end = self.end.astype(np.float64)
        betas[-1] = np.exp(end - end.max())
        for t in range(length - 2, -1, -1):
            beta = self.transition_weights @ (emission_weights[t + 1] * betas[t + 1])
            betas[t] = beta / beta.max()
        joint = alphas * betas
        return joint / joint.sum(axis=1, keepdims=True)
