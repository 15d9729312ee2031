"""Document context: the words around each sentence in its document, which models with
bert_context=document read beside the sentence (ner/model/features/wordpiece.py keeps those
that fit in the sentence's BERT window).

A document is a run of consecutive sentences with the same `document` number; -DOCSTART- lines
hold no words. The C++ runner's library computes the same context (inference/cc/tagger.cc)."""
from __future__ import annotations

from collections.abc import Sequence

from ner.data.conll import Sentence

Context = tuple[tuple[str, ...], tuple[str, ...]]  # (words before, nearest last; words after, nearest first)
NO_CONTEXT: Context = ((), ())


def document_contexts(sentences: Sequence[Sentence], words: int) -> list[Context]:
    """Per sentence, up to `words` words of its document before it and after it (none when words is
    0). -DOCSTART- lines get no context and give none."""
    contexts = [NO_CONTEXT] * len(sentences)
    if words <= 0:
        return contexts
    start = 0
    while start < len(sentences):
        end = start
        while end < len(sentences) and sentences[end].document == sentences[start].document:
            end += 1
        members = [i for i in range(start, end) if not sentences[i].docstart]
        flat: list[str] = []
        spans = []
        for i in members:
            spans.append((len(flat), len(flat) + len(sentences[i])))
            flat.extend(sentences[i].words)
        for i, (first, last) in zip(members, spans):
            contexts[i] = (tuple(flat[max(first - words, 0):first]), tuple(flat[last:last + words]))
        start = end
    return contexts
