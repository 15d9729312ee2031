"""Dev metrics: etagger's per-token (partial) F1 and conlleval's chunk figures, overall and per type."""
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


def chunk_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> tuple[float, dict[str, dict]]:
    """conlleval's overall FB1 in percent, and per entity type that gold or predicted tags hold,
    sorted by name: its precision, recall and F1 in percent and its counts of gold, predicted and
    correct chunks."""
    counts = conlleval.chunk_counts(gold, predicted)
    by_type = {}
    for entity_type in sorted({*counts.gold_chunks_by_type, *counts.guessed_chunks_by_type}):
        precision, recall, f1 = conlleval.metrics(counts, entity_type)
        by_type[entity_type] = {"precision": precision, "recall": recall, "f1": f1,
                                "gold": counts.gold_chunks_by_type[entity_type],
                                "predicted": counts.guessed_chunks_by_type[entity_type],
                                "correct": counts.correct_chunks_by_type[entity_type]}
    return conlleval.metrics(counts)[2], by_type
