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
