"""The input limits every reader applies before it tokenizes or tags (files, stdin, Beam, the HTTP
service, and the C++ runner, inference/cc/main.cc, with the same numbers, flags and words), so
that no input can make a reader hold more than a bound known in advance.

    limits = Limits(line_bytes=args.max_line_bytes, sentence_tokens=args.max_sentence_tokens)
    raise InputError(name, line, line_too_long(limits.line_bytes))

A line is counted in bytes without its "\\n" (a "\\r" before it counts): UTF-8 text, so bytes bound
the characters too. A sentence is a CoNLL sentence's token lines, or the tokens of a text line.
"""
from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from ner.cli import positive

# Far beyond any real token line or sentence (the longest CoNLL-2003 sentence has 124 tokens, its
# longest line 70 bytes); they bound what one line or one sentence costs.
MAX_LINE_BYTES = 1 << 16
MAX_SENTENCE_TOKENS = 10000
LINE_BYTES_FLAG = "--max_line_bytes"
SENTENCE_TOKENS_FLAG = "--max_sentence_tokens"

# A file is tagged in windows: at most this many sentences (and, past the first, at most this many
# characters of input) are read, sorted by length into batches, tagged and written before the next
# are read (inference.py, Beam). The output does not depend on the window: a sentence's tags do not
# depend on its batch.
WINDOW_SENTENCES = 8192
WINDOW_CHARACTERS = 8 << 20
T = TypeVar("T")


def windows(items: Iterable[T], size_of: Callable[[T], int]) -> Iterator[list[T]]:
    """items in lists of at most WINDOW_SENTENCES, and at most WINDOW_CHARACTERS (size_of each) past the
    first item."""
    window: list[T] = []
    size = 0
    for item in items:
        length = size_of(item)
        if window and (len(window) == WINDOW_SENTENCES or size + length > WINDOW_CHARACTERS):
            yield window
            window, size = [], 0
        window.append(item)
        size += length
    if window:
        yield window


@dataclass(frozen=True)
class Limits:
    line_bytes: int = MAX_LINE_BYTES
    sentence_tokens: int = MAX_SENTENCE_TOKENS


def line_too_long(limit: int) -> str:
    return f"expected a line of at most {limit} bytes ({LINE_BYTES_FLAG} raises it)"


def too_many_tokens(limit: int) -> str:
    return f"expected a sentence of at most {limit} tokens ({SENTENCE_TOKENS_FLAG} raises it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The two flags, as every command that reads input takes them."""
    parser.add_argument(LINE_BYTES_FLAG, type=positive(int), default=MAX_LINE_BYTES,
                        help=f"longest input line in bytes (default {MAX_LINE_BYTES})")
    parser.add_argument(SENTENCE_TOKENS_FLAG, type=positive(int), default=MAX_SENTENCE_TOKENS,
                        help=f"most tokens in one sentence (default {MAX_SENTENCE_TOKENS})")


def from_arguments(args: argparse.Namespace) -> Limits:
    return Limits(line_bytes=args.max_line_bytes, sentence_tokens=args.max_sentence_tokens)
