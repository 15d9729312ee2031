import pytest

from ner.data import conlleval
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


def test_chunk_scores_are_conllevals_overall_and_per_type():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["S-ORG", "B-ORG", "E-ORG"]]
    predicted = [["B-PER", "I-PER", "O", "B-ORG"], ["S-ORG", "S-ORG", "S-ORG"]]
    f1, by_type = metrics.chunk_scores(gold, predicted)
    # conlleval's counts of the same tags written one token a line, IOBES read as IOB2.
    counts = conlleval.evaluate(["w B-PER B-PER", "w I-PER I-PER", "w O O", "w B-LOC B-ORG", "",
                                 "w B-ORG B-ORG", "w B-ORG B-ORG", "w I-ORG B-ORG", ""])
    assert f1 == conlleval.metrics(counts)[2] == pytest.approx(2 * 40 * 50 / 90)  # 2 of 5 found right, 2 of 4 gold
    assert list(by_type) == ["LOC", "ORG", "PER"]
    for entity_type, figures in by_type.items():
        assert (figures["precision"], figures["recall"], figures["f1"]) == conlleval.metrics(counts, entity_type)
    # PER found; LOC missed (taken for an ORG); ORG: the first found, the second cut in two.
    assert {t: (s["gold"], s["predicted"], s["correct"]) for t, s in by_type.items()} == {
        "LOC": (1, 0, 0), "ORG": (2, 4, 1), "PER": (1, 1, 1)}
    assert (by_type["ORG"]["precision"], by_type["ORG"]["recall"]) == (25.0, 50.0)
