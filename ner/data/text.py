"""Text input (one sentence per line) -> lines, and lines -> sentences of tokens with character
offsets, tokenized by a model's tokenize (the tokenizer graph of ner/data/tokenizer.py).

A blank line (or a run of them) ends a document: models with bert_context=document read each
sentence beside the other sentences of its document (ner/data/documents.py). A text without a
blank line is one document."""
from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from ner.data.conll import DOCSTART, InputError, Sentence, decode_line, read_lines, split_columns
from ner.data.limits import Limits, too_many_tokens
from ner.data.schemes import is_valid_tag

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


def check_tokens(item: TextSentence, name: str, limits: Limits) -> None:
    """A text line's tokens are a sentence: at most limits.sentence_tokens of them (the line's
    length bounds the tokenizer's work before this)."""
    if len(item.sentence) > limits.sentence_tokens:
        raise InputError(name, item.sentence.first_line, too_many_tokens(limits.sentence_tokens))


def iter_text(raw_lines: Iterable[bytes | InputError], name: str,
              document_ends: bool = False) -> Iterator[TextLine | InputError | DocumentEnd]:
    """Each line that is not blank, with its document's number; a bad line (not UTF-8, too long,
    or CoNLL: see refuse_conll) comes out as its InputError, in place of the line, and the reading
    goes on (it ends no document). With document_ends, a DocumentEnd comes out as soon as a blank
    line ends a document, so that a stream can tag the document before the next one begins.
    raw_lines: read_lines's."""
    document, open_document = 0, False
    conll = _ConllLines(name)
    for number, raw in enumerate(raw_lines, 1):
        try:
            if isinstance(raw, InputError):
                raise raw
            text = decode_line(raw, name, number)
        except InputError as e:
            yield e
            continue
        if text.strip():
            yield from conll.check(TextLine(text, number, document))
            open_document = True
        else:
            yield from conll.check(None)
            if open_document:
                document, open_document = document + 1, False
                if document_ends:
                    yield DocumentEnd(number)
    yield from conll.check(None)


class _ConllLines:
    """Refuses CoNLL read as raw text: a -DOCSTART- line, or a block (lines between blank lines)
    whose first two lines have the same number of columns (two or more) and end in a tag, as every
    token line of a tagged CoNLL sentence does. Prose seldom ends two lines in a row with 'O' or
    'B-X'; a lone such line (a one-token CoNLL sentence, or prose) is taken as text. check() holds a
    block's first line while it may be CoNLL, so a stream waits for the second line only then."""

    def __init__(self, name: str):
        self.name = name
        self.held: TextLine | None = None  # the block's first line, CoNLL-like
        self.block_start = True  # the next line starts a block
        self.refused = False  # the block was refused: its other lines are left out

    def check(self, line: TextLine | None) -> Iterator[TextLine | InputError]:
        """line: the next line that holds text; None: a blank line or the end of the input."""
        held, self.held = self.held, None
        if line is None:
            self.block_start, self.refused = True, False
            if held is not None:
                yield held
            return
        block_start, self.block_start = self.block_start, False
        fields = split_columns(line.text)
        if fields[0] == DOCSTART:
            self.refused = True
            yield InputError(self.name, line.number, f"found a CoNLL {DOCSTART} line in raw text; "
                             "tag CoNLL with --format conll")
            return
        if self.refused:
            return
        conll_like = len(fields) >= 2 and is_valid_tag(fields[-1])
        if held is not None and conll_like and len(fields) == len(split_columns(held.text)):
            self.refused = True
            yield InputError(self.name, held.number, "found CoNLL token lines (columns ending in a tag) in raw "
                             "text; tag CoNLL with --format conll")
            return
        if held is not None:
            yield held
        elif block_start and conll_like:
            self.held = line
            return
        yield line


def parse_text(data: bytes, name: str, limits: Limits = Limits()) -> list[TextLine]:
    """iter_text, strict: the first bad line raises its InputError."""
    items = []
    for item in iter_text(read_lines(io.BytesIO(data), name, limits.line_bytes), name):
        if isinstance(item, InputError):
            raise item
        items.append(item)
    return items
