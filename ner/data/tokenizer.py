"""Raw text -> tokens with character offsets, as TensorFlow ops: the serving artifacts hold this
graph, so the checkpoint, the export, the frozen graph, libtagger, the C++ runner and the service
all tokenize a text the same way.

Text is read in grapheme clusters, what a reader sees as one character (Unicode's extended
grapheme clusters, UAX #29: a letter with its combining marks, a Devanagari conjunct, a Hangul
syllable written in jamo, a flag, an emoji ZWJ sequence): no token starts or ends inside one.
The rules, applied left to right over the clusters:
  - whitespace separates tokens and is never part of one; so do the invisible format and control
    characters (BOM, zero-width space, word joiner, bidi marks, NUL) where they stand alone, while
    a ZWJ or ZWNJ inside a cluster stays in it (a Persian word with a ZWNJ is one word);
  - a word is a run of letters, digits and underscores, joined across single hyphens
    ("well-known", "COVID-19") and apostrophes ("O'Neill"), and across '.', ',' or ':' between two
    digits ("3.5", "1,000", "12:30");
  - English clitics are split off the end of a word: "don't" -> "do" "n't", "can't" -> "ca" "n't",
    "John's" -> "John" "'s" (also 'm 'd 're 've 'll, either apostrophe ' or U+2019), and a clitic
    on its own stays whole ("'s");
  - letters each followed by a period, two or more times, are one token ("U.S.", "e.g."); any
    other period is a token of its own ("Mr." -> "Mr" ".");
  - a run of periods ("...") or of hyphens ("--") is one token;
  - every other cluster (punctuation, quotes, brackets, symbols such as $ % / & +, an emoji, a
    flag) is a token by itself.
A cluster of several characters counts as its first visible character's kind (letter, digit,
underscore or symbol), so NFD "Zu\\u0308rich" is one word as NFC "Z\\u00fcrich" is; one with an
enclosing mark (a keycap "1\\ufe0f\\u20e3") is a symbol. Only a cluster of one character can be
the period, hyphen, apostrophe or clitic letter of a rule: NFD "n\\u0303't" is no "n't", as NFC
"\\u00f1't" is not either.

How: RE2 (TF Text's regex_split_with_offsets) cuts each text into clusters with the UAX #29
pattern; each cluster becomes one ASCII stand-in character of its kind; the token rules run as
RE2 patterns over the stand-ins; the stand-ins' offsets are cluster numbers, which map back to
the text's bytes and characters. The Unicode classes come from the `regex` module's tables when
the graph is built, so the graph needs no Unicode data of its own.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import regex

from ner import op_libraries

# The stand-in of each kind of cluster: ASCII, so RE2's \w, \b and byte offsets are exact.
SPACE, LETTER, DIGIT, SYMBOL = " ", "a", "0", "#"
# Characters a rule names, as themselves when a cluster is that one character (lowercased).
_LITERALS = {**{c: c for c in "smdrevlnt_.-,:'"}, **{c.upper(): c for c in "smdrevlnt"}, "\u2019": "'"}

_WORD_PART = r"(?:0(?:[.,:]0)+|\w)"   # a word character, or digits joined by . , or :
TOKEN_PATTERN = "|".join([
    r"(?:[a-z]\.){2,}",                         # abbreviation: U.S., e.g.
    r"'(?:s|m|d|re|ve|ll)\b",                   # clitic standing alone: 's
    rf"{_WORD_PART}+(?:[-']{_WORD_PART}+)*",    # word, number
    r"\.{2,}",                                  # ellipsis
    r"-{2,}",                                   # dash
    r"[^ ]",                                    # any other cluster
])
# A word's trailing clitic: the replacement leaves what precedes it.
CLITIC_PATTERN = r"^(.+?)(?:n't|'(?:s|m|d|re|ve|ll))$"

_PLANES = ((0, 0xD800), (0xE000, 0x110000))  # every code point but the surrogates


@cache
def _plane_texts() -> tuple[str, ...]:
    return tuple("".join(map(chr, range(low, high))) for low, high in _PLANES)


@cache
def code_point_ranges(pattern: str) -> tuple[tuple[int, int], ...]:
    """The inclusive code point ranges of the characters that a `regex` character class matches."""
    found = []
    for (low, _), text in zip(_PLANES, _plane_texts()):
        found += [(low + m.start(), low + m.end() - 1) for m in regex.finditer(f"(?:{pattern})+", text)]
    return tuple(found)


def _union(*patterns: str) -> tuple[tuple[int, int], ...]:
    """The sorted inclusive code point ranges of the characters that any of the `regex` classes match."""
    return tuple(sorted(r for pattern in patterns for r in code_point_ranges(pattern)))


def _re2_class(*patterns: str, negate: bool = False) -> str:
    """An RE2 character class of the code points that any of the `regex` classes match."""
    items = "".join(f"\\x{{{a:X}}}" if a == b else f"\\x{{{a:X}}}-\\x{{{b:X}}}" for a, b in _union(*patterns))
    return f"[{'^' if negate else ''}{items}]"


def _gcb(*names: str) -> tuple[str, ...]:
    """`regex` classes of these Grapheme_Cluster_Break values."""
    return tuple(rf"\p{{Grapheme_Cluster_Break={name}}}" for name in names)


# Indic conjuncts (GB9c): consonants, linkers (viramas), and the other characters (InCB=Extend)
# that may stand among the linkers between two consonants.
_CONSONANT, _LINKER, _CONJUNCT_EXTEND = r"\p{InCB=Consonant}", r"\p{InCB=Linker}", r"\p{InCB=Extend}"


@cache
def cluster_pattern() -> str:
    """UAX #29's extended grapheme cluster as an RE2 pattern (its Table 1b regex, with GB9c's
    Indic conjuncts)."""
    def gcb(*names, negate=False):  # characters of these Grapheme_Cluster_Break values
        return _re2_class(*_gcb(*names), negate=negate)
    control, not_control = gcb("CR", "LF", "Control"), gcb("CR", "LF", "Control", negate=True)
    extend, zwj = gcb("Extend"), gcb("ZWJ")
    postcore = gcb("Extend", "ZWJ", "SpacingMark")
    hangul_l, hangul_v, hangul_t, hangul_lv, hangul_lvt = (gcb(n) for n in ("L", "V", "T", "LV", "LVT"))
    hangul = (f"{hangul_l}*(?:{hangul_v}+|{hangul_lv}{hangul_v}*|{hangul_lvt}){hangul_t}*"
              f"|{hangul_l}+|{hangul_t}+")
    regional_pair = gcb("Regional_Indicator") + "{2}"
    pictographic = _re2_class(r"\p{Extended_Pictographic}")
    pictographic_sequence = f"{pictographic}(?:{extend}*{zwj}{pictographic})*"
    consonant, linker = _re2_class(_CONSONANT), _re2_class(_LINKER)
    extend_only, joiner = _re2_class(_CONJUNCT_EXTEND), _re2_class(_CONJUNCT_EXTEND, _LINKER)
    # Between two consonants, joiners holding a linker: UAX #29's [Extend Linker]* Linker [Extend
    # Linker]*, written with no linker before the first, which matches the same text and keeps a
    # backtracking engine (text_tokens.py's) linear where a consonant is followed by many linkers.
    conjunct = f"{consonant}(?:{extend_only}*{linker}{joiner}*{consonant})+"
    core = f"(?:{hangul}|{regional_pair}|{pictographic_sequence}|{conjunct}|{not_control})"
    return f"\r\n|{control}|{gcb('Prepend')}*{core}{postcore}*"


@cache
def joining_ranges() -> tuple[tuple[int, int], ...]:
    """The characters without which every cluster is one character: each cluster_pattern() match of
    two or more characters holds one (the CR of CR LF, a Prepend, a Hangul L, V or T, a regional
    indicator, an Extend, ZWJ or SpacingMark, a conjunct's linker)."""
    return _union(*_gcb("CR", "Prepend", "L", "V", "T", "Regional_Indicator", "Extend", "ZWJ", "SpacingMark"),
                  _LINKER)


# The `regex` classes of what decides a cluster's kind besides its first visible character.
_CLUSTER_CLASSES = {"invisible": (r"\p{Cf}", r"\p{Cc}"), "space": (r"\s",), "enclosing": (r"\p{Me}",)}


@cache
def _cluster_classes() -> dict[str, str]:
    """_CLUSTER_CLASSES as RE2 classes."""
    return {name: _re2_class(*patterns) for name, patterns in _CLUSTER_CLASSES.items()}


@cache
def stand_in_tables() -> dict[str, np.ndarray]:
    """Code point -> stand-in as range tables (sorted starts, the stand-in's code from each start
    on): "general" for a cluster's first visible character, "single" for a cluster of one."""
    kinds = np.full(0x110000, ord(SYMBOL), np.int32)
    for pattern, stand_in in ((r"[\p{L}\p{N}]", LETTER), (r"\p{Nd}", DIGIT), (r"\s", SPACE)):
        for a, b in code_point_ranges(pattern):
            kinds[a:b + 1] = ord(stand_in)
    kinds[ord("_")] = ord("_")
    single = kinds.copy()
    for char, stand_in in _LITERALS.items():
        single[ord(char)] = ord(stand_in)

    def table(values):
        starts = np.concatenate([[0], np.flatnonzero(np.diff(values)) + 1]).astype(np.int32)
        return starts, values[starts]
    (general_starts, general), (single_starts, singles) = table(kinds), table(single)
    return {"general_starts": general_starts, "general": general, "single_starts": single_starts, "single": singles}


@cache
def tokenizer_patterns() -> dict:
    """Everything the rules read, as JSON values: the patterns (RE2 syntax), the cluster classes and
    joining_ranges as inclusive code point ranges, and stand_in_tables. The graph and the tokenizer
    without TensorFlow (ner/serving/text_tokens.py) both read these; a folder may keep them, so
    that its tokenizer does not depend on the `regex` module's Unicode version where it is served."""
    return {"cluster": cluster_pattern(), "token": TOKEN_PATTERN, "clitic": CLITIC_PATTERN,
            **{name: [list(r) for r in _union(*patterns)] for name, patterns in _CLUSTER_CLASSES.items()},
            "joining": [list(r) for r in joining_ranges()],
            **{name: table.tolist() for name, table in stand_in_tables().items()}}


def _regex_split_op():
    return op_libraries.load(op_libraries.REGEX_SPLIT).regex_split_with_offsets


def tokenize_graph(texts):
    """texts [N] (UTF-8) -> {"tokens" [N, T] ('' padding), "lengths" [N] int32, "starts" and
    "ends" [N, T] int32: each token's character offsets, end exclusive}."""
    import tensorflow as tf
    split = _regex_split_op()
    texts = tf.reshape(texts, [-1])
    cluster = cluster_pattern()
    # RegexSplitWithOffsets stops at a NUL; U+0001 is a control character as well, alone in its cluster.
    readable = tf.strings.regex_replace(texts, r"\x00", "\x01")
    clusters, _, _, cluster_splits = split(readable, f"({cluster})", f"({cluster})")

    classes = _cluster_classes()
    visible = tf.strings.regex_replace(clusters, classes["invisible"], "")
    code_points = tf.strings.unicode_decode(visible, "UTF-8")
    counts = code_points.row_lengths()
    first = tf.gather(tf.concat([code_points.flat_values, [0]], 0),
                      tf.where(counts > 0, code_points.row_starts(), tf.size(code_points.flat_values, tf.int64)))
    tables = stand_in_tables()

    def look_up(key):
        return tf.gather(tf.constant(tables[key]), tf.searchsorted(tf.constant(tables[f"{key}_starts"]), first,
                                                                  side="right") - 1)
    kinds = tf.where(counts == 1, look_up("single"), look_up("general"))
    kinds = tf.where(tf.strings.regex_full_match(visible, f"(?s).*{classes['enclosing']}.*"), ord(SYMBOL), kinds)
    blank = (counts == 0) | tf.strings.regex_full_match(visible, f"(?s).*{classes['space']}.*")
    kinds = tf.where(blank, ord(SPACE), kinds)
    stand_ins = tf.strings.unicode_encode(tf.RaggedTensor.from_row_splits(kinds, cluster_splits), "UTF-8")

    # Stand-in offsets are cluster numbers within a text.
    words, first_cluster, end_cluster, word_splits = split(stand_ins, f"( +|{TOKEN_PATTERN})", f"({TOKEN_PATTERN})")
    prefix = tf.cast(tf.strings.length(tf.strings.regex_replace(words, CLITIC_PATTERN, r"\1")), tf.int64)
    clitic_start = first_cluster + tf.where(prefix < end_cluster - first_cluster, prefix, 0)
    pieces = tf.stack([clitic_start > first_cluster, tf.ones_like(clitic_start, tf.bool)], 1)
    word_rows = tf.RaggedTensor.from_row_splits(words, word_splits).value_rowids()
    rows = tf.boolean_mask(tf.stack([word_rows, word_rows], 1), pieces)
    row_base = tf.gather(cluster_splits, rows)
    first_of_piece = tf.boolean_mask(tf.stack([first_cluster, clitic_start], 1), pieces) + row_base
    end_of_piece = tf.boolean_mask(tf.stack([clitic_start, end_cluster], 1), pieces) + row_base

    # A token joins its clusters (never a control character, so "readable" holds its bytes as the
    # text does): linear in the text, where a substring of each token's gathered text would copy
    # the whole text once per token.
    tokens = tf.strings.reduce_join(tf.gather(clusters, tf.ragged.range(first_of_piece, end_of_piece)), axis=-1)
    cluster_chars = tf.cast(tf.strings.length(clusters, unit="UTF8_CHAR"), tf.int64)
    char_start = tf.concat([[0], tf.cumsum(cluster_chars)], 0)  # of every cluster, over all texts
    text_start = tf.gather(char_start, row_base)

    def padded(values, default):
        return tf.RaggedTensor.from_value_rowids(values, rows, nrows=tf.size(texts, tf.int64)).to_tensor(default)
    return {"tokens": padded(tokens, ""),
            "lengths": tf.cast(tf.math.bincount(tf.cast(rows, tf.int32), minlength=tf.size(texts),
                                                maxlength=tf.size(texts)), tf.int32),
            "starts": tf.cast(padded(tf.gather(char_start, first_of_piece) - text_start, 0), tf.int32),
            "ends": tf.cast(padded(tf.gather(char_start, end_of_piece) - text_start, 0), tf.int32)}


_VISIBLE = regex.compile(r"[\p{L}\p{N}\p{P}\p{S}]")


def fewest_tokens(text: str) -> int:
    """A lower bound on the tokens of `text`, in linear time without the graph, so that a limit can
    be checked before tokenizing: every run between whitespace that holds a letter, number,
    punctuation mark or symbol holds a token (such a character starts or is part of a visible
    cluster, and every visible cluster is in a token), and no token spans whitespace (every
    character str.split takes for whitespace separates tokens)."""
    return sum(1 for run in text.split() if _VISIBLE.search(run))


@cache
def tokenizer_function():
    """tokenize_graph as a tf.function over a batch of texts [N]."""
    import tensorflow as tf
    return tf.function(tokenize_graph, autograph=False, input_signature=[tf.TensorSpec([None], tf.string, name="text")])


def tokenized(run, texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
    """Runs a tokenizer graph (any runtime's: UTF-8 texts [N] -> its padded outputs by name) on
    texts -> per text, its (token, start, end)."""
    output = run(np.array([text.encode("utf-8") for text in texts], dtype=object))
    tokens, starts, ends = (np.asarray(output[key]) for key in ("tokens", "starts", "ends"))
    return [[(tokens[row, i].decode("utf-8"), int(starts[row, i]), int(ends[row, i])) for i in range(int(length))]
            for row, length in enumerate(np.asarray(output["lengths"]))]


def tokenize_texts(texts: Sequence[str]) -> list[list[tuple[str, int, int]]]:
    """Each text's (token, start, end), character offsets, end exclusive."""
    return tokenized(tokenizer_function(), texts)
