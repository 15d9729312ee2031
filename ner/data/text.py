"""Raw text -> tokens with character offsets, and text input (one sentence per line) -> sentences."""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from ner.data.conll import InputError, Sentence, decode_line

_APOSTROPHES = "'\u2019"
_TOKEN = re.compile(
    rf"""
      (?:[^\W\d_]\.){{2,}}                       # abbreviation: U.S., e.g.
    | [{_APOSTROPHES}](?:s|m|d|re|ve|ll)\b       # clitic standing alone: 's
    | \w+(?:(?:-|[{_APOSTROPHES}]|(?<=\d)[.,:](?=\d))\w+)*   # word, number
    | \.{{2,}}                                   # ellipsis
    | -{{2,}}                                    # dash
    | \S                                         # any other symbol
    """,
    re.VERBOSE | re.IGNORECASE,
)
_CLITIC = re.compile(rf"(?:n[{_APOSTROPHES}]t|[{_APOSTROPHES}](?:s|m|d|re|ve|ll))$", re.IGNORECASE)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split raw text into (token, start, end) with character offsets, end exclusive.

    The rules, applied left to right:
      - whitespace separates tokens and is never part of one;
      - a word is a run of letters, digits and underscores, joined across single
        hyphens ("well-known", "COVID-19") and apostrophes ("O'Neill"), and across
        '.', ',' or ':' between two digits ("3.5", "1,000", "12:30");
      - English clitics are split off the end of a word: "don't" -> "do" "n't",
        "can't" -> "ca" "n't", "John's" -> "John" "'s" (also 'm 'd 're 've 'll,
        either apostrophe ' or U+2019), and a clitic on its own stays whole ("'s");
      - letters each followed by a period, two or more times, are one token ("U.S.",
        "e.g."); any other period is a token of its own ("Mr." -> "Mr" ".");
      - a run of periods ("...") or of hyphens ("--") is one token;
      - every other character (punctuation, quotes, brackets, symbols such as
        $ % / & +) is a token by itself.
    """
    tokens = []
    for match in _TOKEN.finditer(text):
        token, start, end = match.group(), match.start(), match.end()
        clitic = _CLITIC.search(token)
        if clitic and clitic.start() > 0:
            split = start + clitic.start()
            tokens.append((text[start:split], start, split))
            start = split
        tokens.append((text[start:end], start, end))
    return tokens


@dataclass(frozen=True)
class TextSentence:
    """A line of raw text as a sentence of its tokens, with each token's character offsets."""
    sentence: Sentence
    text: str
    offsets: tuple[tuple[int, int], ...]


def text_sentence(text: str, number: int) -> TextSentence:
    """`text` tokenized as one sentence (perhaps of no token); `number` is its line (or position)."""
    tokens = tokenize(text)
    words = tuple(word for word, _, _ in tokens)
    return TextSentence(Sentence(lines=words, columns=tuple((word,) for word in words), first_line=number), text,
                        tuple((start, end) for _, start, end in tokens))


def iter_text(data: bytes, name: str) -> Iterator[TextSentence | InputError]:
    """One sentence per line that holds a token; a line that is not UTF-8 comes out as its
    InputError, in place of the sentence, and the reading goes on."""
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            item = text_sentence(decode_line(raw, name, number), number)
        except InputError as e:
            yield e
            continue
        if len(item.sentence):
            yield item


def parse_text(data: bytes, name: str) -> list[TextSentence]:
    """iter_text, strict: the first line that is not UTF-8 raises its InputError."""
    items = []
    for item in iter_text(data, name):
        if isinstance(item, InputError):
            raise item
        items.append(item)
    return items
