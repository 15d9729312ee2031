"""Reading CoNLL files, converting between tag schemes, tokenizing raw text.

Pure Python (plus numpy); only make_dataset, the tf.data batching at the end, imports
TensorFlow, and only when called.
"""

from __future__ import annotations

import re
import string
import sys
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

SCHEMES = ("iob1", "iob2", "iobes")
DOCSTART = "-DOCSTART-"

_UTF8_BOM = b"\xef\xbb\xbf"
_CHUNK_PREFIXES = ("B", "I", "E", "S")
_SCHEME_PREFIXES = {"iob1": ("B", "I"), "iob2": ("B", "I"), "iobes": _CHUNK_PREFIXES}
# Only ASCII whitespace separates columns: a Unicode space such as U+00A0 can be
# part of a token ("1\u00a0000") in text taken from the web.
_COLUMN_SEPARATOR = re.compile(f"[{re.escape(string.whitespace)}]+")


class InputError(ValueError):
    """Bad input; str() is 'file:line: what was expected'."""

    def __init__(self, name: str, line: int, expected: str):
        # All three as args, so the exception survives pickling (multiprocessing).
        super().__init__(name, line, expected)
        self.name = name
        self.line = line
        self.expected = expected

    def __str__(self) -> str:
        return f"{self.name}:{self.line}: {self.expected}"


@dataclass(frozen=True)
class Sentence:
    """One sentence of a CoNLL file, or one '-DOCSTART-' line (docstart=True)."""

    lines: tuple[str, ...]  # original token lines, line ends stripped
    columns: tuple[tuple[str, ...], ...]  # fields per token
    first_line: int  # 1-based line number of the first token line
    docstart: bool = False

    def column(self, index: int) -> tuple[str, ...]:
        return tuple(fields[index] for fields in self.columns)

    @property
    def words(self) -> tuple[str, ...]:
        return self.column(0)

    @property
    def tags(self) -> tuple[str, ...]:
        """The last column: the tags when the file is tagged."""
        return self.column(-1)

    def __len__(self) -> int:
        return len(self.lines)


def read_conll(path: str, tagged: bool = True, name: str | None = None) -> list[Sentence]:
    """Read a CoNLL file ('-' reads stdin); see parse_conll. Errors name the file as `name`."""
    if path == "-":
        return parse_conll(sys.stdin.buffer.read(), name or "<stdin>", tagged)
    with open(path, "rb") as file:
        return parse_conll(file.read(), name or path, tagged)


def parse_conll(data: bytes, name: str, tagged: bool = True) -> list[Sentence]:
    """Split CoNLL data (UTF-8 bytes) into sentences, validating every line.

    One token per line; columns are separated by tabs if the line contains a tab,
    else by runs of (ASCII) whitespace. The word is the first column and, when
    `tagged`, the tag is the last; columns in between are features. Blank lines
    separate sentences. A line whose first field is '-DOCSTART-' is a sentence of
    its own (docstart=True) and is not otherwise checked. Every other line must
    have as many columns as the file's first token line, no empty field, and (when
    tagged) at least two columns and a tag 'O' or B-/I-/E-/S- plus a type.
    Raises InputError naming `name` and the line number.
    """
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    sentences: list[Sentence] = []
    pending_lines: list[str] = []
    pending_columns: list[tuple[str, ...]] = []
    pending_start = 0
    reference: tuple[int, int] | None = None  # (column count, line number) of the first token line

    def flush() -> None:
        if pending_lines:
            sentences.append(Sentence(tuple(pending_lines), tuple(pending_columns), pending_start))
            pending_lines.clear()
            pending_columns.clear()

    for line_number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        line = _decode_line(raw, name, line_number)
        fields = _split_columns(line)
        if not fields:
            flush()
            continue
        if fields[0] == DOCSTART:
            flush()
            sentences.append(Sentence((line,), (fields,), line_number, docstart=True))
            continue
        _check_fields(fields, name, line_number)
        if reference is None:
            if tagged and len(fields) < 2:
                raise InputError(
                    name, line_number, f"expected at least 2 columns (word and tag), found {len(fields)}"
                )
            reference = (len(fields), line_number)
        elif len(fields) != reference[0]:
            raise InputError(
                name,
                line_number,
                f"expected {reference[0]} columns like line {reference[1]}, found {len(fields)}",
            )
        if tagged and not _is_valid_tag(fields[-1]):
            raise InputError(
                name,
                line_number,
                f"expected a tag 'O' or B-/I-/E-/S- followed by a type, found {fields[-1]!r}",
            )
        if not pending_lines:
            pending_start = line_number
        pending_lines.append(line)
        pending_columns.append(fields)
    flush()
    return sentences


def _decode_line(raw: bytes, name: str, line_number: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(
            name,
            line_number,
            f"expected UTF-8 text, found invalid byte 0x{raw[error.start]:02x}"
            f" at byte offset {error.start} of the line",
        ) from None


def _split_columns(line: str) -> tuple[str, ...]:
    """The fields of a line; () for a blank line."""
    stripped = line.strip(string.whitespace)
    if not stripped:
        return ()
    if "\t" in line:
        return tuple(line.split("\t"))
    return tuple(_COLUMN_SEPARATOR.split(stripped))


def _check_fields(fields: tuple[str, ...], name: str, line_number: int) -> None:
    for index, field in enumerate(fields):
        if not field:
            raise InputError(
                name,
                line_number,
                f"expected non-empty columns, found column {index + 1} of {len(fields)} empty"
                " (two tabs in a row, or a trailing tab?)",
            )


# ---------------------------------------------------------------- tag schemes


def _parse_tag(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of a chunk tag such as 'B-PER'; None for 'O' and for other names."""
    if len(tag) > 2 and tag[0] in _CHUNK_PREFIXES and tag[1] == "-":
        return tag[0], tag[2:]
    return None


def _is_valid_tag(tag: str) -> bool:
    return tag == "O" or _parse_tag(tag) is not None


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """The scheme the tag sequences are written in.

    'iobes' if any tag is E-/S-; else 'iob1' if any I-X starts a chunk (first
    token, or after O or a chunk of another type); else 'iob2'.
    """
    inside_starts_chunk = False
    for tags in tag_sequences:
        previous_type = None  # type of the previous token's chunk; None outside chunks
        for tag in tags:
            parsed = _parse_tag(tag)
            if parsed is None:
                previous_type = None
                continue
            prefix, chunk_type = parsed
            if prefix in ("E", "S"):
                return "iobes"
            if prefix == "I" and previous_type != chunk_type:
                inside_starts_chunk = True
            previous_type = chunk_type
    return "iob1" if inside_starts_chunk else "iob2"


def chunk_spans(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive) of each chunk in `tags`.

    Decoding is the same for every scheme, as in conlleval: B-X and S-X always
    open a chunk; I-X and E-X continue an open chunk of type X and otherwise open
    one (so ill-formed sequences still decode); E-X and S-X close their chunk;
    O closes any chunk. Tags that are neither O nor chunk tags (say a padding
    tag) count as O. Every well-formed sequence of any scheme decodes correctly,
    so `scheme` is only checked for being a known name.
    """
    _check_scheme(scheme)
    spans = []
    open_chunk: tuple[str, int] | None = None  # (type, start)
    for position, tag in enumerate(tags):
        prefix, chunk_type = _parse_tag(tag) or ("O", None)
        continues = open_chunk is not None and prefix in ("I", "E") and chunk_type == open_chunk[0]
        if open_chunk is not None and not continues:
            spans.append((open_chunk[0], open_chunk[1], position))
            open_chunk = None
        if chunk_type is not None and open_chunk is None:
            open_chunk = (chunk_type, position)
        if prefix in ("E", "S"):
            spans.append((chunk_type, open_chunk[1], position + 1))
            open_chunk = None
    if open_chunk is not None:
        spans.append((open_chunk[0], open_chunk[1], len(tags)))
    return spans


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """`tags` rewritten from scheme `source` to scheme `target`, chunk by chunk.

    The chunks are those of chunk_spans, so ill-formed input comes out well formed
    and tags that are not chunk tags become 'O'. In IOB1 output a chunk starts with
    B- only when it directly follows a chunk of the same type, with I- otherwise.
    """
    spans = chunk_spans(tags, source)
    _check_scheme(target)
    converted = ["O"] * len(tags)
    previous_end, previous_type = None, None
    for chunk_type, start, end in spans:
        length = end - start
        begin, inside, last, single = (f"{prefix}-{chunk_type}" for prefix in "BIES")
        if target == "iobes":
            chunk = [single] if length == 1 else [begin] + [inside] * (length - 2) + [last]
        elif target == "iob2" or (start == previous_end and chunk_type == previous_type):
            chunk = [begin] + [inside] * (length - 1)
        else:
            chunk = [inside] * length
        converted[start:end] = chunk
        previous_end, previous_type = end, chunk_type
    return converted


def allowed_transitions(
    tag_names: Sequence[str], scheme: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tag sequences are well formed in `scheme`, for constraining a CRF.

    Returns boolean arrays allowed[previous, next] of shape (N, N), and
    allowed_start, allowed_end of shape (N,). A sequence passes them exactly when
    convert_tags(tags, scheme, scheme) leaves it unchanged:
      iob2:  I-X only after B-X or I-X (so never first);
      iob1:  B-X only after B-X or I-X (so never first);
      iobes: B-X and I-X are followed by I-X or E-X; E-X, S-X and O by B-, S- or O;
             the first tag is B-, S- or O and the last E-, S- or O.
    Chunk tags with a prefix the scheme lacks (E-/S- in IOB1/IOB2) are never
    allowed; names that are not O or chunk tags (say a padding tag) are allowed
    everywhere.
    """
    _check_scheme(scheme)
    # Each name's role: (prefix, type), ("O", None), or None for a name allowed everywhere.
    roles = [("O", None) if name == "O" else _parse_tag(name) for name in tag_names]
    usable = [role is None or role[0] in ("O",) + _SCHEME_PREFIXES[scheme] for role in roles]

    size = len(roles)
    transitions = np.zeros((size, size), dtype=bool)
    start = np.zeros(size, dtype=bool)
    end = np.zeros(size, dtype=bool)
    for i, role in enumerate(roles):
        if not usable[i]:
            continue
        # Starting a sentence is like following O; ending one, like being followed by O.
        start[i] = _transition_allowed(("O", None), role, scheme)
        end[i] = _transition_allowed(role, ("O", None), scheme)
        for j, following in enumerate(roles):
            transitions[i, j] = usable[j] and _transition_allowed(role, following, scheme)
    return transitions, start, end


def _transition_allowed(
    previous: tuple[str, str | None] | None, following: tuple[str, str | None] | None, scheme: str
) -> bool:
    if previous is None or following is None:  # not a chunk tag or O: unconstrained
        return True
    previous_prefix, previous_type = previous
    following_prefix, following_type = following
    if scheme == "iobes":
        if previous_prefix in ("B", "I"):
            return following_prefix in ("I", "E") and following_type == previous_type
        return following_prefix in ("B", "S", "O")
    same_type_chunk = previous_prefix != "O" and following_type == previous_type
    if scheme == "iob2":
        return following_prefix != "I" or same_type_chunk
    return following_prefix != "B" or same_type_chunk  # iob1


# ---------------------------------------------------------------- raw text

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


def format_conll_line(line: str, tag: str) -> str:
    """`line` with `tag` as a new last column, separated the way the line's columns are."""
    separator = "\t" if "\t" in line else " "
    return f"{line}{separator}{tag}"


# --- tags of a scheme, and batching -------------------------------------------------------

def tag_names(entity_types: Sequence[str], scheme: str) -> list[str]:
    """Every tag of `scheme` over the entity types, "O" first (id 0)."""
    prefixes = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}[scheme]
    return ["O"] + [f"{prefix}-{kind}" for kind in entity_types for prefix in prefixes]


# Sentences of similar length are batched together so that little time goes to padding.
BUCKET_BOUNDARIES = (8, 12, 16, 20, 25, 30, 40, 50, 70)


def make_dataset(sentences: Sequence[Sentence], feature_columns: Sequence[int], batch_size: int,
                 tag_scheme: tuple[str, str] | None = None, shuffle_seed: int | None = None):
    """A tf.data pipeline of padded batches {"words", "lengths", "features" [B, T, F], "tags"?}.

    With tag_scheme=(source, target) the batches carry the gold tags converted to the target
    scheme. With shuffle_seed the sentences are shuffled and bucketed by length (training);
    without, batches keep the given order (callers sort by length first).
    """
    import tensorflow as tf  # only the batching needs TensorFlow

    lengths = [len(sentence) for sentence in sentences]

    def ragged(flat_values, inner_shape=()):
        values = tf.constant(np.array(flat_values, dtype=object).reshape((sum(lengths),) + inner_shape), tf.string)
        return tf.RaggedTensor.from_row_lengths(values, tf.constant(lengths, tf.int64))

    # Whole columns become tensors at once: no Python runs per sentence while batching.
    columns = {"words": ragged([w for s in sentences for w in s.words]),
               "features": ragged([[token[c] for c in feature_columns] for s in sentences for token in s.columns],
                                  (len(feature_columns),))}
    if tag_scheme is not None:
        columns["tags"] = ragged([t for s in sentences for t in convert_tags(s.tags, *tag_scheme)])
    dataset = tf.data.Dataset.from_tensor_slices(columns)
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(sentences), seed=shuffle_seed)
    dataset = dataset.map(lambda example: {**example, "lengths": tf.shape(example["words"])[0]})
    padding = {key: tf.constant("" if key != "lengths" else 0, spec.dtype)
               for key, spec in dataset.element_spec.items()}
    if shuffle_seed is None:
        dataset = dataset.padded_batch(batch_size, padding_values=padding)
    else:
        dataset = dataset.bucket_by_sequence_length(
            lambda example: example["lengths"], list(BUCKET_BOUNDARIES), [batch_size] * (len(BUCKET_BOUNDARIES) + 1),
            padding_values=padding)
    return dataset.prefetch(2)
