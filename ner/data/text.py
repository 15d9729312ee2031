"""Text input (one sentence per line) -> lines, and lines -> sentences of tokens with character
offsets, tokenized by a model's tokenize (the tokenizer graph of ner/data/tokenizer.py).

A blank line (or a run of them) ends a document: models with bert_context=document read each
sentence beside the other sentences of its document (ner/data/documents.py). A text without a
blank line is one document."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ner.data.conll import InputError, Sentence, decode_line, split_lines

# A model's tokenize: texts -> each text's (token, start, end)
Tokenize = Callable[[list[str]], list[list[tuple[str, int, int]]]]


@dataclass(frozen=True)
class TextLine:
    """A line of raw text, its number (line, or position in a request) and its document's number
    (documents of a text are numbered from 0, in order)."""
    text: str
    number: int
    document: int = 0


@dataclass(frozen=True)
class DocumentEnd:
    """Where a document of raw text ends: the first blank line after it, by number."""
    number: int


@dataclass(frozen=True)
class TextSentence:
    """A line of raw text as a sentence of its tokens, with each token's character offsets."""
    sentence: Sentence
    text: str
    offsets: tuple[tuple[int, int], ...]


def text_sentences(lines: Sequence[TextLine], tokenize: Tokenize) -> list[TextSentence]:
    """Each line tokenized as one sentence (perhaps of no token) of the line's document, in one call
    of tokenize."""
    sentences = []
    for line, tokens in zip(lines, tokenize([line.text for line in lines]) if lines else []):
        words = tuple(word for word, _, _ in tokens)
        sentence = Sentence(lines=words, columns=tuple((word,) for word in words), first_line=line.number,
                            document=line.document)
        sentences.append(TextSentence(sentence, line.text, tuple((start, end) for _, start, end in tokens)))
    return sentences


def iter_text(raw_lines: Iterable[bytes], name: str,
              document_ends: bool = False) -> Iterator[TextLine | InputError | DocumentEnd]:
    """Each line that is not blank, with its document's number; a line that is not UTF-8 comes out
    as its InputError, in place of the line, and the reading goes on (it ends no document). With
    document_ends, a DocumentEnd comes out as soon as a blank line ends a document, so that a
    stream can tag the document before the next one begins. raw_lines: the input's lines without
    their "\n" (split_lines)."""
    document, open_document = 0, False
    for number, raw in enumerate(raw_lines, 1):
        try:
            text = decode_line(raw, name, number)
        except InputError as e:
            yield e
            continue
        if text.strip():
            yield TextLine(text, number, document)
            open_document = True
        elif open_document:
            document, open_document = document + 1, False
            if document_ends:
                yield DocumentEnd(number)


def parse_text(data: bytes, name: str) -> list[TextLine]:
    """iter_text, strict: the first line that is not UTF-8 raises its InputError."""
    items = []
    for item in iter_text(split_lines(data), name):
        if isinstance(item, InputError):
            raise item
        items.append(item)
    return items
