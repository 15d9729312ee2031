import pytest

from ner.training import metrics


def test_token_f1_counts_only_tokens_tagged_or_predicted_as_entities():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "O"]]
    predicted = [["B-PER", "O", "O", "B-ORG"], ["B-MISC", "O"]]
    # predicted non-O: 3, of which correct 1 (B-PER); gold non-O: 3 -> P = R = 1/3.
    assert metrics.token_f1(gold, predicted) == pytest.approx(100 / 3)


def test_token_f1_edge_cases():
    assert metrics.token_f1([["O", "O"]], [["O", "O"]]) == 0.0
    assert metrics.token_f1([["B-PER"]], [["B-PER"]]) == 100.0
    with pytest.raises(ValueError):
        metrics.token_f1([["O"]], [["O", "O"]])


def test_chunk_f1_is_conllevals():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"]]
    # One of two chunks found and correct: P = R = 50.
    assert metrics.chunk_f1(gold, predicted) == pytest.approx(50.0)
