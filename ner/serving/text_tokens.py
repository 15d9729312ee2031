"""Raw text -> tokens with character offsets, without TensorFlow: the tokenizer graph of
ner/data/tokenizer.py (its rules are in its docstring) run in Python on the same patterns and
tables (tokenizer_patterns), with the same answers.

The engine is Python's `re`: like RE2 it picks the leftmost match and, among the matches there,
the first in the pattern's order (leftmost-first, greedy, no backreferences or lookarounds in these
patterns), so the same pattern strings cut texts at the same places; only RE2's \\x{...} escapes
are rewritten as \\U........ The patterns never match an empty string, and the stand-in strings
hold no "\\n" (where `$` would differ). tests/serving/test_text_tokens.py checks the answers
against the graph's.

Where a text holds none of the joining characters (tokenizer.joining_ranges), every cluster is one
character, and the stand-ins are a table lookup per character in numpy: the cluster pattern runs
only on text that needs it (combining marks, emoji sequences, Hangul jamo, CR LF, ...).
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from functools import cache

import numpy as np

from ner.data.tokenizer import SPACE, SYMBOL, tokenizer_patterns

_CODE_POINTS = 0x110000


def _python_syntax(pattern: str) -> str:
    """An RE2 pattern in the syntax of Python's re: \\x{H...} -> \\U0000H..."""
    return re.sub(r"\\x\{([0-9A-Fa-f]+)\}", lambda m: f"\\U{int(m[1], 16):08X}", pattern)


def _member(ranges) -> np.ndarray:
    """Inclusive code point ranges -> a bool per code point."""
    member = np.zeros(_CODE_POINTS, bool)
    for first, last in ranges:
        member[first:last + 1] = True
    return member


def _per_code_point(starts, values) -> np.ndarray:
    """A range table (sorted starts, the value from each start on) -> a uint8 per code point."""
    starts = np.asarray(starts, np.int64)
    return np.repeat(np.asarray(values, np.uint8), np.diff(np.append(starts, _CODE_POINTS)))


class TextTokenizer:
    """tokenize(texts) -> each text's (token, start, end), character offsets, end exclusive, as
    ner.data.tokenizer.tokenize_texts gives them. patterns: tokenizer_patterns()'s dict (a folder's
    copy, or None for the one this installation's `regex` tables make)."""

    def __init__(self, patterns: dict | None = None):
        patterns = tokenizer_patterns() if patterns is None else patterns
        self._cluster = re.compile(_python_syntax(f"({patterns['cluster']})"))
        token = _python_syntax(patterns["token"])
        # The graph's RegexSplitWithOffsets: split at ( +|token), keep the delimiters that are tokens.
        self._delimiter = re.compile(f"( +|{token})")
        self._clitic = re.compile(_python_syntax(patterns["clitic"]))
        self._invisible, self._space, self._enclosing = (_member(patterns[name]) for name in
                                                         ("invisible", "space", "enclosing"))
        self._joining = _member(patterns["joining"])
        self._general = _per_code_point(patterns["general_starts"], patterns["general"])
        self._single = _per_code_point(patterns["single_starts"], patterns["single"])
        # Each code point's stand-in as a cluster of its own: the stand-ins of a text without
        # joining characters.
        every = np.arange(_CODE_POINTS, dtype=np.uint32)
        self._alone = self._stand_ins(every, np.arange(_CODE_POINTS + 1))

    def _stand_ins(self, code_points: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """The stand-in (uint8) of each cluster, clusters code_points[bounds[i]:bounds[i + 1]], as the
        graph decides it: by the first visible character (a format or control character is
        invisible), as a one-character cluster if it is the only one; a symbol if a visible
        character is an enclosing mark; a space if none is visible or one is whitespace."""
        if len(code_points) == 0:
            return np.zeros(0, np.uint8)
        starts = bounds[:-1]
        visible = ~self._invisible[code_points]

        def clusters_with(flags):
            return np.add.reduceat(flags.astype(np.int32), starts)
        count = clusters_with(visible)
        # The first visible character's position (len(code_points), code point 0, where none is).
        first = np.minimum.reduceat(np.where(visible, np.arange(len(code_points)), len(code_points)), starts)
        first = np.append(code_points, 0)[first]
        kinds = np.where(count == 1, self._single[first], self._general[first])
        kinds = np.where(clusters_with(visible & self._enclosing[code_points]) > 0, ord(SYMBOL), kinds)
        blank = (count == 0) | (clusters_with(visible & self._space[code_points]) > 0)
        return np.where(blank, ord(SPACE), kinds).astype(np.uint8)

    def _split(self, text: str):
        """RegexSplitWithOffsets(text, ( +|token), (token)): the pieces between delimiters and the
        delimiters that are tokens, with their offsets. A delimiter is a token unless it is spaces
        (no token starts with a space; a run of spaces is no token)."""
        end = 0
        for match in self._delimiter.finditer(text):
            if match.start() > end:
                yield text[end:match.start()], end, match.start()
            if text[match.start()] != SPACE:
                yield match.group(), match.start(), match.end()
            end = match.end()
        if end < len(text):
            yield text[end:], end, len(text)

    def tokenize_one(self, text: str) -> list[tuple[str, int, int]]:
        code_points = np.frombuffer(text.encode("utf-32-le"), np.uint32)
        if self._joining[code_points].any():
            lengths = [len(cluster) for cluster in self._cluster.findall(text)]
            bounds = np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])
            stand_ins = self._stand_ins(code_points, bounds).tobytes().decode("ascii")
            offsets = bounds.tolist()  # cluster number -> character offset
        else:
            stand_ins = self._alone[code_points].tobytes().decode("ascii")
            offsets = None
        tokens = []
        for word, first, end in self._split(stand_ins):
            # The graph keeps the length of what replacing the clitic pattern (anchored at both ends)
            # by its group 1 leaves: the whole word, or what precedes its clitic.
            clitic = self._clitic.match(word)
            prefix = len(clitic.group(1)) if clitic else len(word)
            clitic_start = first + (prefix if prefix < end - first else 0)
            pieces = ((first, clitic_start), (clitic_start, end)) if clitic_start > first else ((first, end),)
            for start, stop in pieces:
                if offsets is not None:
                    start, stop = offsets[start], offsets[stop]
                tokens.append((text[start:stop], start, stop))
        return tokens

    def tokenize(self, texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
        return [self.tokenize_one(text) for text in texts]


@cache
def default_tokenizer() -> TextTokenizer:
    """The tokenizer on this installation's patterns (built once: about 0.3 s)."""
    return TextTokenizer()


def tokenize_texts(texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
    """Each text's (token, start, end), character offsets, end exclusive: the tokenizer graph's answer."""
    return default_tokenizer().tokenize(texts)
