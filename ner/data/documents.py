"""Document context: the words around each sentence in its document, which models with
bert_context=document read beside the sentence (ner/model/features/wordpiece.py keeps those
that fit in the sentence's BERT window).

A document is a run of consecutive sentences with the same `document` number; -DOCSTART- lines
hold no words. The C++ runner's library computes the same context (inference/cc/tagger.cc)."""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

from ner.data.conll import Sentence

Context = tuple[tuple[str, ...], tuple[str, ...]]  # (words before, nearest last; words after, nearest first)
NO_CONTEXT: Context = ((), ())
T = TypeVar("T")


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


def iter_contexts(items: Iterable[T], words: int,
                  sentence_of: Callable[[T], Sentence] = lambda item: item) -> Iterator[tuple[T, Context]]:
    """document_contexts for a stream: each item (sentence_of gives its sentence) with its context,
    in order, as soon as the words after it are known (`words` of them, or its document's end).
    Holds only the items that wait for words after them, and `words` words before: bounded
    whatever the document's length."""
    waiting: deque[tuple[T, tuple[str, ...], list[str]]] = deque()  # (item, words before, words after so far)
    before: deque[str] = deque(maxlen=max(words, 0))  # the last words of the current document
    document = None
    for item in items:
        sentence = sentence_of(item)
        if sentence.document != document:
            yield from ((done, (done_before, tuple(after))) for done, done_before, after in waiting)
            waiting.clear()
            before.clear()
            document = sentence.document
        if words <= 0 or sentence.docstart:
            yield item, NO_CONTEXT
            continue
        for _, _, after in waiting:
            after.extend(sentence.words[:words - len(after)])
        while waiting and len(waiting[0][2]) == words:
            done, done_before, after = waiting.popleft()
            yield done, (done_before, tuple(after))
        waiting.append((item, tuple(before), []))
        before.extend(sentence.words)
    yield from ((done, (done_before, tuple(after))) for done, done_before, after in waiting)
