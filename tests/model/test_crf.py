"""CRF head checked against brute-force enumeration of all tag paths (numpy, float64)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf

from ner.model.heads.crf import CRF

ATOL = 1e-4


def random_constraints(rng, num_tags):
    """Random constraints that always allow the all-zeros path, so every length has an allowed path."""
    allowed = rng.random((num_tags, num_tags)) < 0.6
    allowed_start = rng.random(num_tags) < 0.6
    allowed_end = rng.random(num_tags) < 0.6
    allowed[0, 0] = allowed_start[0] = allowed_end[0] = True
    return allowed, allowed_start, allowed_end


def make_crf(rng, num_tags, constrained):
    constraints = random_constraints(rng, num_tags) if constrained else (None, None, None)
    crf = CRF(num_tags, *constraints)
    # Larger than the init range so the transition terms matter in the comparisons.
    crf.transitions.assign(rng.normal(size=(num_tags, num_tags)).astype(np.float32))
    crf.start.assign(rng.normal(size=num_tags).astype(np.float32))
    crf.end.assign(rng.normal(size=num_tags).astype(np.float32))
    return crf, constraints


def is_allowed(path, constraints):
    allowed, allowed_start, allowed_end = constraints
    if allowed is None:
        return True
    return (allowed_start[path[0]] and allowed_end[path[-1]]
            and all(allowed[prev, nxt] for prev, nxt in zip(path, path[1:])))


def path_score(crf, emissions, path):
    transitions, start, end = (v.numpy().astype(np.float64) for v in (crf.transitions, crf.start, crf.end))
    return (start[path[0]] + end[path[-1]] + sum(emissions[t, tag] for t, tag in enumerate(path))
            + sum(transitions[prev, nxt] for prev, nxt in zip(path, path[1:])))


def brute_force(crf, constraints, emissions, length):
    """-> (allowed paths, their scores, log partition, marginals [length, N]) over allowed paths."""
    paths = [p for p in itertools.product(range(crf.num_tags), repeat=length) if is_allowed(p, constraints)]
    scores = np.array([path_score(crf, emissions.astype(np.float64), p) for p in paths])
    log_partition = np.logaddexp.reduce(scores)
    marginals = np.zeros((length, crf.num_tags))
    for path, probability in zip(paths, np.exp(scores - log_partition)):
        marginals[np.arange(length), path] += probability
    return paths, scores, log_partition, marginals


def random_batch(rng, num_tags, lengths, width=None):
    """Emissions with garbage (large random values) beyond each length; padded tags are -1."""
    width = width or max(lengths)
    emissions = rng.normal(size=(len(lengths), width, num_tags)).astype(np.float32)
    for row, length in enumerate(lengths):
        emissions[row, length:] = 50 * rng.normal(size=(width - length, num_tags))
    return emissions, np.full((len(lengths), width), -1, np.int32), np.array(lengths, np.int32)


def fill_allowed_tags(rng, crf, constraints, emissions, tags, lengths):
    """Writes a random allowed path into each row's valid steps; returns the brute-force results per row."""
    results = []
    for row, length in enumerate(lengths):
        result = brute_force(crf, constraints, emissions[row, :length], length)
        gold = rng.integers(len(result[0]))
        tags[row, :length] = result[0][gold]
        results.append((gold,) + result)
    return results


CASES = [(num_tags, constrained, seed) for num_tags in (3, 4) for constrained in (False, True) for seed in (0, 1)]


@pytest.mark.parametrize("num_tags,constrained,seed", CASES)
def test_matches_brute_force(num_tags, constrained, seed):
    rng = np.random.default_rng(seed)
    crf, constraints = make_crf(rng, num_tags, constrained)
    # Width 6 > the longest length, so every row, including the longest, has trailing padding.
    emissions, tags, lengths = random_batch(rng, num_tags, [5, 1, 3, 4, 2], width=6)
    expected = [(scores[gold] - log_partition, paths[np.argmax(scores)], scores.max(), marginals)
                for gold, paths, scores, log_partition, marginals
                in fill_allowed_tags(rng, crf, constraints, emissions, tags, lengths)]

    log_likelihood = crf.log_likelihood(emissions, tags, lengths).numpy()
    decoded, best_scores = (x.numpy() for x in crf.decode(emissions, lengths))
    marginals = crf.marginals(emissions, lengths).numpy()
    for row, length in enumerate(lengths):
        expected_ll, expected_path, expected_score, expected_marginals = expected[row]
        np.testing.assert_allclose(log_likelihood[row], expected_ll, atol=ATOL)
        np.testing.assert_array_equal(decoded[row, :length], expected_path)
        np.testing.assert_array_equal(decoded[row, length:], 0)
        np.testing.assert_allclose(best_scores[row], expected_score, atol=ATOL)
        np.testing.assert_allclose(marginals[row, :length], expected_marginals, atol=ATOL)
        np.testing.assert_allclose(marginals[row, :length].sum(axis=1), 1.0, atol=ATOL)
    assert np.all(np.isfinite(marginals))


def first_sentence_results(crf, emissions, tags, lengths):
    decoded, best_scores = crf.decode(emissions, lengths)
    return (crf.log_likelihood(emissions, tags, lengths)[0].numpy(), decoded[0].numpy(), best_scores[0].numpy(),
            crf.marginals(emissions, lengths)[0].numpy())


@pytest.mark.parametrize("constrained", (False, True))
def test_padding_invariance(constrained):
    rng = np.random.default_rng(2)
    crf, constraints = make_crf(rng, 4, constrained)
    emissions, tags, lengths = random_batch(rng, 4, [3, 5, 1, 4], width=7)
    fill_allowed_tags(rng, crf, constraints, emissions, tags, lengths)
    ll_alone, tags_alone, score_alone, marginals_alone = first_sentence_results(
        crf, emissions[:1, :3], tags[:1, :3], lengths[:1])
    ll_batch, tags_batch, score_batch, marginals_batch = first_sentence_results(crf, emissions, tags, lengths)

    np.testing.assert_allclose(ll_alone, ll_batch, rtol=1e-6)
    np.testing.assert_array_equal(tags_alone, tags_batch[:3])
    np.testing.assert_array_equal(tags_batch[3:], 0)
    np.testing.assert_allclose(score_alone, score_batch, rtol=1e-6)
    np.testing.assert_allclose(marginals_alone, marginals_batch[:3], rtol=1e-5)


def test_tf_function_and_gradients():
    num_tags = 4
    rng = np.random.default_rng(3)
    crf, constraints = make_crf(rng, num_tags, constrained=True)
    specs = dict(emissions=tf.TensorSpec([None, None, num_tags], tf.float32),
                 tags=tf.TensorSpec([None, None], tf.int32), lengths=tf.TensorSpec([None], tf.int32))

    @tf.function(input_signature=[specs["emissions"], specs["tags"], specs["lengths"]])
    def likelihood_and_gradients(emissions, tags, lengths):
        with tf.GradientTape() as tape:
            tape.watch(emissions)
            log_likelihood = crf.log_likelihood(emissions, tags, lengths)
            total = tf.reduce_sum(log_likelihood)
        gradients = tape.gradient(total, [emissions, crf.transitions, crf.start, crf.end])
        return log_likelihood, gradients

    decode = tf.function(crf.decode, input_signature=[specs["emissions"], specs["lengths"]])
    marginals = tf.function(crf.marginals, input_signature=[specs["emissions"], specs["lengths"]])

    for lengths in ([1], [1, 1], [4, 2, 6]):  # T == 1 exercises the empty-loop case
        emissions, tags, lengths = random_batch(rng, num_tags, lengths)
        fill_allowed_tags(rng, crf, constraints, emissions, tags, lengths)
        log_likelihood, (emission_grad, *variable_grads) = likelihood_and_gradients(emissions, tags, lengths)

        np.testing.assert_allclose(log_likelihood, crf.log_likelihood(emissions, tags, lengths), rtol=1e-5)
        for graph_result, eager_result in zip(decode(emissions, lengths), crf.decode(emissions, lengths)):
            np.testing.assert_allclose(graph_result, eager_result, rtol=1e-6)
        posterior = marginals(emissions, lengths).numpy()
        np.testing.assert_allclose(posterior, crf.marginals(emissions, lengths), rtol=1e-5, atol=1e-6)

        variable_grads = [tf.convert_to_tensor(g).numpy() for g in variable_grads]  # start/end: IndexedSlices
        assert all(np.all(np.isfinite(g)) for g in variable_grads)
        if lengths.max() > 1:  # a single step has no transitions, so their gradient is rightly zero
            assert all(np.any(g != 0) for g in variable_grads)
        # d log p / d emission[t, j] = [tags_t == j] - p(tag_t = j) on valid steps, 0 on padding.
        valid = (np.arange(tags.shape[1]) < lengths[:, None])[..., None]
        expected = np.where(valid, np.eye(num_tags)[np.maximum(tags, 0)] - posterior, 0.0)
        np.testing.assert_allclose(emission_grad, expected, atol=ATOL)


@pytest.mark.parametrize("num_tags,constrained,seed", CASES)
def test_marginals_parallel_matches_brute_force_and_marginals(num_tags, constrained, seed):
    rng = np.random.default_rng(seed)
    crf, constraints = make_crf(rng, num_tags, constrained)
    emissions, tags, lengths = random_batch(rng, num_tags, [5, 1, 3, 4, 2], width=6)
    parallel = crf.marginals_parallel(emissions, lengths).numpy()
    for row, length in enumerate(lengths):
        expected = brute_force(crf, constraints, emissions[row, :length], length)[3]
        np.testing.assert_allclose(parallel[row, :length], expected, atol=1e-6)  # float64 inside
    # Past each length too (the same filler as marginals()), and long sentences with padding garbage.
    np.testing.assert_allclose(parallel, crf.marginals(emissions, lengths).numpy(), atol=ATOL)
    emissions, _, lengths = random_batch(rng, num_tags, [1, 17, 40, 33], width=45)
    parallel = crf.marginals_parallel(emissions, lengths).numpy()
    np.testing.assert_allclose(parallel, crf.marginals(emissions, lengths).numpy(), atol=ATOL)
    single = crf.marginals_parallel(emissions[2:3, :40], lengths[2:3]).numpy()
    np.testing.assert_allclose(single[0], parallel[2, :40], atol=1e-6)


@pytest.mark.parametrize("batch, time", [(2, 5), (40, 20)], ids=["parallel", "loops"])
def test_posteriors_equal_marginals_on_either_side_of_the_size_switch(batch, time):
    tf.random.set_seed(3)
    crf = CRF(4)
    emissions = tf.random.normal([batch, time, 4])
    lengths = tf.random.uniform([batch], 1, time + 1, dtype=tf.int32)
    mask = tf.sequence_mask(lengths, time)[..., None]
    np.testing.assert_allclose(tf.where(mask, crf.posteriors(emissions, lengths), 0.0).numpy(),
                               tf.where(mask, crf.marginals(emissions, lengths), 0.0).numpy(), atol=1e-4)
