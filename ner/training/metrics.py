"""Dev metrics: etagger's per-token (partial) F1 and conlleval chunk F1."""
from __future__ import annotations

from collections.abc import Sequence

from ner.data import conlleval


def token_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], outside: str = "O") -> float:
    """Micro F1 in percent over the tokens whose gold or predicted tag is not O."""
    correct = found = expected = 0
    for gold_tags, predicted_tags in zip(gold, predicted, strict=True):
        for g, p in zip(gold_tags, predicted_tags, strict=True):
            found += p != outside
            expected += g != outside
            correct += p == g and g != outside
    precision = correct / found if found else 0.0
    recall = correct / expected if expected else 0.0
    return 200.0 * precision * recall / (precision + recall) if precision + recall else 0.0


def chunk_f1(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> float:
    """conlleval's overall FB1 in percent."""
    return conlleval.chunk_f1(gold, predicted)
