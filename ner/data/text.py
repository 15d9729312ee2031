"""Raw text -> tokens with character offsets, and text input (one sentence per line) -> sentences."""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate

import regex

from ner.data.conll import InputError, Sentence, decode_line

_APOSTROPHES = "'\u2019"
# The token rules, over one stand-in character per grapheme cluster (see _stand_ins).
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
# Unicode's extended grapheme clusters (UAX #29) come from the `regex` module: the standard
# library has no \X, and the cluster rules (ZWJ emoji sequences, flags, Indic conjuncts) change
# with Unicode versions, so they are better not kept by hand here.
_CLUSTER = regex.compile(r"\X")
_INVISIBLE = regex.compile(r"[\p{Cf}\p{Cc}]")
_VISIBLE = regex.compile(r"[^\p{Cf}\p{Cc}]")
_ENCLOSING = regex.compile(r"\p{Me}")
_ASCII_CONTROLS = {code: " " for code in [*range(0x20), 0x7F]}


@lru_cache(maxsize=4096)
def _stand_in(cluster: str) -> str:
    """The one character that a grapheme cluster counts as for the token rules: a space for a
    cluster of format and control characters only (a BOM, a zero-width space, NUL) and for one with
    whitespace in it (a mark on a space, a stray prepended letter before one); else the cluster's
    NFC form when that is one character (so that NFD text tokenizes as NFC does); else its enclosing
    mark if it has one, so that a keycap "1\\ufe0f\\u20e3" or a circled letter is a symbol; else its
    first character that is neither a format nor a control one (an emoji sequence counts as its
    first emoji, a conjunct as its first consonant, a letter with marks as the letter)."""
    if len(cluster) == 1:
        return " " if _INVISIBLE.match(cluster) else cluster
    base = _VISIBLE.search(cluster)
    if base is None or any(c.isspace() for c in cluster):
        return " "
    composed = unicodedata.normalize("NFC", cluster)
    if len(composed) == 1:
        return composed
    enclosing = _ENCLOSING.search(cluster)
    return enclosing.group() if enclosing else base.group()


def _stand_ins(text: str) -> tuple[str, Sequence[int]]:
    """(one _stand_in character per grapheme cluster of `text`, the clusters' start offsets and
    then len(text))."""
    if text.isascii():  # clusters of one character (CR LF aside: whitespace either way); kept fast
        return text.translate(_ASCII_CONTROLS), range(len(text) + 1)
    clusters = _CLUSTER.findall(text)
    if len(clusters) == len(text):
        return _INVISIBLE.sub(" ", text), range(len(text) + 1)
    return "".join(map(_stand_in, clusters)), [0, *accumulate(map(len, clusters))]


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Split raw text into (token, start, end) with character offsets, end exclusive.

    Text is read in grapheme clusters, what a reader sees as one character (Unicode's extended
    grapheme clusters: a letter with its combining marks, a Devanagari conjunct, a Hangul syllable
    written in jamo, a flag, an emoji ZWJ sequence): no token starts or ends inside one, and each
    counts as its base character, so NFD "Zu\\u0308rich" is one word as NFC "Z\\u00fcrich" is.
    The rules, applied left to right over the clusters:
      - whitespace separates tokens and is never part of one; so do the invisible format and
        control characters (BOM, zero-width space, word joiner, bidi marks, NUL) where they stand
        alone, while a ZWJ or ZWNJ inside a cluster stays in it (a Persian word with a ZWNJ is one);
      - a word is a run of letters, digits and underscores, joined across single
        hyphens ("well-known", "COVID-19") and apostrophes ("O'Neill"), and across
        '.', ',' or ':' between two digits ("3.5", "1,000", "12:30");
      - English clitics are split off the end of a word: "don't" -> "do" "n't",
        "can't" -> "ca" "n't", "John's" -> "John" "'s" (also 'm 'd 're 've 'll,
        either apostrophe ' or U+2019), and a clitic on its own stays whole ("'s");
      - letters each followed by a period, two or more times, are one token ("U.S.",
        "e.g."); any other period is a token of its own ("Mr." -> "Mr" ".");
      - a run of periods ("...") or of hyphens ("--") is one token;
      - every other cluster (punctuation, quotes, brackets, symbols such as $ % / & +,
        an emoji, a flag) is a token by itself.
    """
    stand_ins, starts = _stand_ins(text)
    tokens = []
    for match in _TOKEN.finditer(stand_ins):
        first, last = match.span()
        start, end = starts[first], starts[last]
        clitic = _CLITIC.search(match.group())
        if clitic and clitic.start() > 0:
            split = starts[first + clitic.start()]
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


def iter_text(raw_lines: Iterable[bytes], name: str) -> Iterator[TextSentence | InputError]:
    """One sentence per line that holds a token; a line that is not UTF-8 comes out as its
    InputError, in place of the sentence, and the reading goes on. raw_lines: the input's lines,
    line ends removed."""
    for number, raw in enumerate(raw_lines, 1):
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
    for item in iter_text(data.splitlines(), name):
        if isinstance(item, InputError):
            raise item
        items.append(item)
    return items
