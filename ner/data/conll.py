"""Reading and writing CoNLL files: one token per line, the word first, the tag last, feature
columns between; sentences separated by blank lines; -DOCSTART- lines between documents.

One reader serves every caller: strict (training, inference.py: the first bad line stops the
read) or lenient (the Beam pipeline: a sentence with a bad line comes out as its InputError and
the reading goes on).
"""
from __future__ import annotations

import os
import re
import string
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from ner.data.schemes import is_valid_tag

DOCSTART = "-DOCSTART-"

_UTF8_BOM = b"\xef\xbb\xbf"
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
    # Which document of its input it belongs to: -DOCSTART- lines (CoNLL), blank lines (raw text) or
    # requests (the service) start a new one. Models with bert_context=document read its neighbours.
    document: int = 0

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
    return parse_conll(read_bytes(path), name or display_name(path), tagged)


def read_bytes(path: str) -> bytes:
    """A file's bytes; '-' reads stdin."""
    if path == "-":
        return sys.stdin.buffer.read()
    with open(path, "rb") as file:
        return file.read()


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def parse_conll(data: bytes, name: str, tagged: bool = True) -> list[Sentence]:
    """Split CoNLL data (UTF-8 bytes) into sentences, validating every line.

    One token per line; columns are separated by tabs if the line contains a tab,
    else by runs of (ASCII) whitespace. The word is the first column and, when
    `tagged`, the tag is the last; columns in between are features. Blank lines
    end sentences; a '-DOCSTART-' line is a sentence of its own (docstart=True).
    Every token line must have as many columns as the file's first token line, no empty field, and (when
    tagged) at least two columns and a tag 'O' or B-/I-/E-/S- plus a type.
    Raises InputError naming `name` and the line number.
    """
    sentences = []
    for item in iter_conll(split_lines(data), name, tagged):
        if isinstance(item, InputError):
            raise item
        sentences.append(item)
    return sentences


def iter_conll(raw_lines: Iterable[bytes], name: str, tagged: bool = False) -> Iterator[Sentence | InputError]:
    """parse_conll's sentences one by one, as soon as each one ends (so a stream can be tagged as it
    comes), and lenient: a sentence with a bad line comes out as the InputError of its first bad
    line, in place of the sentence, and the reading goes on. raw_lines: the input's lines, line
    feeds removed."""
    lines: list[str] = []
    columns: list[tuple[str, ...]] = []
    start = 0
    error: InputError | None = None
    reference: tuple[int, int] | None = None  # (column count, line number) of the first good token line
    document = 0

    def flush():
        nonlocal lines, columns, error
        item = (error if error is not None else Sentence(tuple(lines), tuple(columns), start, document=document)
                if lines else None)
        lines, columns, error = [], [], None
        return item

    for line_number, raw in enumerate(raw_lines, start=1):
        if line_number == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM):]
        try:
            line = decode_line(raw, name, line_number)
        except InputError as e:
            error = error or e
            if not lines:
                start = line_number
            lines.append("")
            continue
        fields = split_columns(line)
        if not fields or fields[0] == DOCSTART:
            item = flush()
            if item is not None:
                yield item
            if fields:
                document += 1
                yield Sentence((line,), (fields,), line_number, docstart=True, document=document)
            continue
        if not lines:
            start = line_number
        lines.append(line)
        columns.append(fields)
        if error is None:
            try:
                _check_token_line(fields, name, line_number, tagged, reference)
                reference = reference or (len(fields), line_number)
            except InputError as e:
                error = e
    item = flush()
    if item is not None:
        yield item


def _check_token_line(fields: tuple[str, ...], name: str, line_number: int, tagged: bool,
                      reference: tuple[int, int] | None) -> None:
    for index, field in enumerate(fields):
        if not field:
            raise InputError(name, line_number, f"expected non-empty columns, found column {index + 1} of "
                             f"{len(fields)} empty (two tabs in a row, or a trailing tab?)")
    if reference is None:
        if tagged and len(fields) < 2:
            raise InputError(name, line_number, f"expected at least 2 columns (word and tag), found {len(fields)}")
    elif len(fields) != reference[0]:
        raise InputError(name, line_number, f"expected {reference[0]} columns like line {reference[1]}, "
                         f"found {len(fields)}")
    if tagged and not is_valid_tag(fields[-1]):
        raise InputError(name, line_number,
                         f"expected a tag 'O' or B-/I-/E-/S- followed by a type, found {fields[-1]!r}")


def check_feature_columns(sentence: Sentence, feature_columns: Sequence[int], name: str) -> None:
    """The model reads these middle columns: every token of the sentence must have them."""
    if not sentence.docstart and feature_columns and len(sentence.columns[0]) <= max(feature_columns):
        raise InputError(name, sentence.first_line, f"the model reads column {max(feature_columns) + 1} (features "
                         f"{list(feature_columns)}); found {len(sentence.columns[0])} columns")


def check_text_input(feature_columns: Sequence[int], model: str) -> None:
    """Raw text has no CoNLL columns: a model that reads some cannot tag it."""
    if feature_columns:
        raise ValueError(f"{model} was trained with CoNLL feature columns {list(feature_columns)}; "
                         "tag CoNLL input instead")


def split_lines(data: bytes) -> list[bytes]:
    """A text's lines, split at "\n" only (not at the other ends bytes.splitlines knows), so that a
    file, a pipe, Beam and the C++ runner number the same lines."""
    return data.split(b"\n")


def decode_line(raw: bytes, name: str, line_number: int) -> str:
    """A line's text, without the "\r" of a "\r\n" end (a lone "\r" is inside its line, as in the
    C++ runner); InputError if it is not UTF-8."""
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(name, line_number, f"expected UTF-8 text, found invalid byte 0x{raw[error.start]:02x}"
                         f" at byte offset {error.start} of the line") from None


def split_columns(line: str) -> tuple[str, ...]:
    """The fields of a line; () for a blank line."""
    stripped = line.strip(string.whitespace)
    if not stripped:
        return ()
    if "\t" in line:
        return tuple(line.split("\t"))
    return tuple(_COLUMN_SEPARATOR.split(stripped))


def format_conll_line(line: str, tag: str) -> str:
    """`line` with `tag` as a new last column, separated the way the line's columns are."""
    separator = "\t" if "\t" in line else " "
    return f"{line}{separator}{tag}"


def read_split(data_dir: str, split: str, required: bool = True) -> list[Sentence]:
    """DATA_DIR/<split>.txt's sentences, -DOCSTART- lines left out; a required split must exist and
    hold a sentence, a missing optional one gives []."""
    path = os.path.join(data_dir, f"{split}.txt")
    if not os.path.exists(path):
        if required:
            raise FileNotFoundError(f"{path}: not found; --data_dir needs train.txt and dev.txt (test.txt optional)")
        return []
    sentences = [s for s in read_conll(path) if not s.docstart]
    if required and not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences
