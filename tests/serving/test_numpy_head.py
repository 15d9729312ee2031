"""numpy_head against brute-force enumeration of every tag path of small random CRFs, and the
softmax head against its definition."""
import itertools

import numpy as np
import pytest

from ner.serving.numpy_head import NumpyHead


def random_crf(rng, num_tags, forbidden=()):
    transitions = rng.normal(size=(num_tags, num_tags)).astype(np.float32)
    for previous, following in forbidden:
        transitions[previous, following] = -1e4  # layers/crf.py's DISALLOWED_PENALTY
    return {"type": "crf", "tags": [f"T{i}" for i in range(num_tags)], "transitions": transitions.tolist(),
            "start": rng.normal(size=num_tags).astype(np.float32).tolist(),
            "end": rng.normal(size=num_tags).astype(np.float32).tolist()}


def brute_force(description, emissions):
    """-> (best path, per-position marginals) by scoring every path."""
    transitions, start, end = (np.asarray(description[k], np.float64) for k in ("transitions", "start", "end"))
    length, num_tags = emissions.shape
    paths = list(itertools.product(range(num_tags), repeat=length))
    scores = np.array([start[p[0]] + end[p[-1]] + sum(emissions[t, p[t]] for t in range(length))
                       + sum(transitions[p[t - 1], p[t]] for t in range(1, length)) for p in paths])
    weights = np.exp(scores - scores.max())
    marginals = np.zeros((length, num_tags))
    for path, weight in zip(paths, weights):
        marginals[np.arange(length), path] += weight
    return np.array(paths[int(scores.argmax())]), marginals / weights.sum()


@pytest.mark.parametrize("seed", range(6))
def test_crf_decoding_and_confidence_match_brute_force(seed):
    rng = np.random.default_rng(seed)
    num_tags = 3 + seed % 2
    description = random_crf(rng, num_tags, forbidden=[(0, 1)] if seed % 3 == 0 else [])
    head = NumpyHead(description)
    lengths = np.array([4, 1, 3])
    emissions = rng.normal(size=(3, 4, num_tags)).astype(np.float32) * 2
    output = head.predict(emissions, lengths)
    for b, length in enumerate(lengths):
        path, marginals = brute_force(description, emissions[b, :length].astype(np.float64))
        assert [t.decode() for t in output["tags"][b, :length]] == [f"T{i}" for i in path]
        np.testing.assert_allclose(output["confidence"][b, :length], marginals[np.arange(length), path], rtol=1e-5)
        assert all(t == "" for t in output["tags"][b, length:]) and not output["confidence"][b, length:].any()


def test_softmax_head_takes_the_most_likely_tag_and_its_probability():
    rng = np.random.default_rng(0)
    emissions = rng.normal(size=(2, 5, 4)).astype(np.float32)
    output = NumpyHead({"type": "softmax", "tags": ["O", "B-X", "I-X", "S-X"]}).predict(emissions, np.array([5, 2]))
    probabilities = np.exp(emissions) / np.exp(emissions).sum(axis=2, keepdims=True)
    np.testing.assert_allclose(output["confidence"][0], probabilities[0].max(axis=1), rtol=1e-6)
    assert [t.decode() for t in output["tags"][1, :2]] == [["O", "B-X", "I-X", "S-X"][i] for i in emissions[1, :2].argmax(axis=1)]


def log_space_marginals(description, emissions):
    """Forward-backward in log space (float64): the reference for sentences too long to enumerate."""
    transitions, start, end = (np.asarray(description[k], np.float64) for k in ("transitions", "start", "end"))

    def logsumexp(x, axis):
        top = x.max(axis=axis, keepdims=True)
        return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)
    length = len(emissions)
    alphas, betas = np.zeros(emissions.shape), np.zeros(emissions.shape)
    alphas[0] = start + emissions[0]
    for t in range(1, length):
        alphas[t] = logsumexp(alphas[t - 1][:, None] + transitions, 0) + emissions[t]
    betas[-1] = end
    for t in range(length - 2, -1, -1):
        betas[t] = logsumexp(transitions + (emissions[t + 1] + betas[t + 1])[None, :], 1)
    joint = alphas + betas
    return np.exp(joint - logsumexp(joint, 1)[:, None])


@pytest.mark.parametrize("unreachable", [False, True])
def test_long_sentences_keep_exact_confidences_with_messages_rescaled_every_few_steps(unreachable, monkeypatch):
    """Messages are rescaled every few steps. Where every step's best-scoring tag (300 above the
    others) cannot be reached, the messages shrink by e^-300 a step and would underflow in between:
    the batch is computed again rescaling every step. A batch of different lengths."""
    rng = np.random.default_rng(7)
    description = random_crf(rng, 5, forbidden=[(0, 1), (2, 3)])
    emissions = (rng.normal(size=(4, 70, 5)) * 3).astype(np.float32)
    if unreachable:
        description["start"][0] = -1e4
        description["transitions"] = [[-1e4 if following == 0 else score for following, score in enumerate(row)]
                                      for row in description["transitions"]]
        emissions[:, :, 0] = 300
    head = NumpyHead(description)
    lengths = np.array([70, 33, 9, 1])
    passes = []
    marginals = head._marginals
    monkeypatch.setattr(head, "_marginals", lambda *args, **kwargs: passes.append(kwargs) or marginals(*args, **kwargs))
    output = head.predict(emissions, lengths)
    assert passes == ([{}, {"every": 1}] if unreachable else [{}])  # the second pass: rescaling every step
    for b, length in enumerate(lengths):
        expected = log_space_marginals(description, emissions[b, :length].astype(np.float64))
        ids = [int(tag.decode()[1:]) for tag in output["tags"][b, :length]]
        np.testing.assert_allclose(output["confidence"][b, :length], expected[np.arange(length), ids], rtol=1e-5, atol=1e-7)
    assert np.isfinite(output["confidence"]).all()
