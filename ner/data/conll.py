"""Reading and writing CoNLL files: one token per line, the word first, the tag last, feature
columns between; sentences separated by blank lines; -DOCSTART- lines between documents.

One reader serves every caller: strict (training, inference.py: the first bad line stops the
read) or lenient (the Beam pipeline: a sentence with a bad line comes out as its InputError and
the reading goes on).
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import string
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import BinaryIO

from ner.data.limits import MAX_LINE_BYTES, Limits, line_too_long, too_many_tokens
from ner.data.schemes import is_valid_tag
from ner.wording import counted

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


def read_conll(path: str, tagged: bool = True, name: str | None = None, limits: Limits = Limits()) -> list[Sentence]:
    """Read a CoNLL file ('-' reads stdin); see parse_conll. Errors name the file as `name`."""
    with open_input(path) as stream:
        return list(iter_conll(read_lines(stream, name or display_name(path), limits.line_bytes),
                               name or display_name(path), tagged, limits=limits, strict=True))


@contextlib.contextmanager
def open_input(path: str) -> Iterator[BinaryIO]:
    """A file opened for reading in bytes; '-' is stdin (left open)."""
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as file:
            yield file


def display_name(path: str) -> str:
    return "<stdin>" if path == "-" else path


def parse_conll(data: bytes, name: str, tagged: bool = True, limits: Limits = Limits()) -> list[Sentence]:
    """Split CoNLL data (UTF-8 bytes) into sentences, validating every line.

    One token per line; columns are separated by tabs if the line contains a tab,
    else by runs of (ASCII) whitespace. The word is the first column and, when
    `tagged`, the tag is the last; columns in between are features. Blank lines
    end sentences; a '-DOCSTART-' line is a sentence of its own (docstart=True).
    Every token line must have as many columns as the file's first token line, no empty field, and (when
    tagged) at least two columns and a tag 'O' or B-/I-/E-/S- plus a type.
    Raises InputError naming `name` and the line number.
    """
    return list(iter_conll(read_lines(io.BytesIO(data), name, limits.line_bytes), name, tagged, limits=limits,
                           strict=True))


def iter_conll(raw_lines: Iterable[bytes | InputError], name: str, tagged: bool = False, limits: Limits = Limits(),
               model_columns: int | None = None, strict: bool = False) -> Iterator[Sentence | InputError]:
    """parse_conll's sentences one by one, as soon as each one ends (so a stream can be tagged as it
    comes). Lenient: a sentence with a bad line comes out as the InputError of its first bad line,
    in place of the sentence, and the reading goes on (what is left of that sentence is read but not
    held); strict: the first bad line raises its InputError at once. raw_lines: read_lines's.

    model_columns: how many columns the model reads (the word and its feature columns), for
    inference: a line with more has a gold column after them, its last, which must hold a tag (a
    line of prose read as CoNLL has no tag there)."""
    lines: list[str] = []
    columns: list[tuple[str, ...]] = []
    start = 0  # the first line of the current sentence; 0 between sentences
    error: InputError | None = None
    reference: tuple[int, int] | None = None  # (column count, line number) of the first good token line
    document = 0

    def flush():
        nonlocal lines, columns, error, start
        item = error if error is not None else Sentence(tuple(lines), tuple(columns), start, document=document)
        lines, columns, error, start = [], [], None, 0
        return item

    def bad(problem: InputError, line_number: int):
        nonlocal error, start
        if strict:
            raise problem
        error = error or problem
        start = start or line_number

    for line_number, raw in enumerate(raw_lines, start=1):
        if isinstance(raw, InputError):
            bad(raw, line_number)
            continue
        if line_number == 1 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM):]
        try:
            line = decode_line(raw, name, line_number)
            _check_nul(line, name, line_number)
        except InputError as e:
            bad(e, line_number)
            continue
        fields = split_columns(line)
        if not fields or fields[0] == DOCSTART:
            if start:
                yield flush()
            if fields:
                document += 1
                yield Sentence((line,), (fields,), line_number, docstart=True, document=document)
            continue
        start = start or line_number
        if error is not None:
            continue  # the sentence is bad already: not held
        try:
            if len(lines) == limits.sentence_tokens:
                raise InputError(name, line_number, too_many_tokens(limits.sentence_tokens))
            _check_token_line(fields, name, line_number, tagged, reference, model_columns)
        except InputError as e:
            bad(e, line_number)
            continue
        reference = reference or (len(fields), line_number)
        lines.append(line)
        columns.append(fields)
    if start:
        yield flush()


def _check_nul(line: str, name: str, line_number: int) -> None:
    """A NUL would end the token in the C API (tagger.h): no runtime takes one in a CoNLL line."""
    nul = line.find("\0")
    if nul >= 0:
        raise InputError(name, line_number, f"expected text, found a NUL byte at byte offset "
                         f"{len(line[:nul].encode())} of the line")


def _check_token_line(fields: tuple[str, ...], name: str, line_number: int, tagged: bool,
                      reference: tuple[int, int] | None, model_columns: int | None) -> None:
    for index, field in enumerate(fields):
        if not field:
            raise InputError(name, line_number, f"expected non-empty columns, found column {index + 1} of "
                             f"{len(fields)} empty (two tabs in a row, or a trailing tab?)")
    if reference is None:
        if tagged and len(fields) < 2:
            raise InputError(name, line_number, f"expected at least 2 columns (word and tag), found {len(fields)}")
    elif len(fields) != reference[0]:
        raise InputError(name, line_number, f"expected {counted(reference[0], 'column')} like line {reference[1]}, "
                         f"found {len(fields)}")
    if tagged and not is_valid_tag(fields[-1]):
        raise InputError(name, line_number,
                         f"expected a tag 'O' or B-/I-/E-/S- followed by a type, found {fields[-1]!r}")
    if model_columns is not None and len(fields) > model_columns and not is_valid_tag(fields[-1]):
        raise InputError(name, line_number, gold_column_problem(len(fields), model_columns, fields[-1]))


def gold_column_problem(found: int, model_columns: int, field: str) -> str:
    """What a line with more columns than the model reads and no tag in its last one lacks: the
    inference readers' (and the C++ runner's) words."""
    return (f"expected a tag ('O' or B-/I-/E-/S- and a type) in the last of {found} columns, the gold column after "
            f"the {model_columns} the model reads, found {field!r}; raw text? use --format text")


def check_feature_columns(sentence: Sentence, feature_columns: Sequence[int], name: str) -> None:
    """The model reads these middle columns: every token of the sentence must have them."""
    if not sentence.docstart and feature_columns and len(sentence.columns[0]) <= max(feature_columns):
        raise InputError(name, sentence.first_line, f"the model reads column {max(feature_columns) + 1} (features "
                         f"{list(feature_columns)}); found {counted(len(sentence.columns[0]), 'column')}")


def check_text_input(feature_columns: Sequence[int], model: str) -> None:
    """Raw text has no CoNLL columns: a model that reads some cannot tag it."""
    if feature_columns:
        raise ValueError(f"{model} was trained with CoNLL feature columns {list(feature_columns)}; "
                         "tag CoNLL input instead")


def read_lines(stream: BinaryIO, name: str, line_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | InputError]:
    """A stream's lines without their "\n", read as they come (an interactive pipe gets each line at
    once) and never more than `line_bytes` of one held: a longer line comes out as its InputError,
    in place of the line, and the rest of it is skipped. Lines end at "\n" only (not at the other
    ends bytes.splitlines knows), so that a file, a pipe, Beam and the C++ runner number the same
    lines. Holds at most line_bytes plus one read's 64 KiB."""
    read = stream.read1 if hasattr(stream, "read1") else stream.read  # read1: what has arrived, without waiting
    head = b""  # the current line so far
    overlong = False  # the current line is longer than line_bytes: reported, the rest is skipped
    number = 1
    while data := read(1 << 16):
        *ends, rest = data.split(b"\n")
        for end in ends:
            if not overlong:
                line = head + end
                yield line if len(line) <= line_bytes else InputError(name, number, line_too_long(line_bytes))
            head, overlong = b"", False
            number += 1
        if not overlong:
            head += rest
            if len(head) > line_bytes:
                head, overlong = b"", True
                yield InputError(name, number, line_too_long(line_bytes))
    if head:
        yield head


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


def read_split(data_dir: str, split: str, required: bool = True, limits: Limits = Limits()) -> list[Sentence]:
    """DATA_DIR/<split>.txt's sentences, -DOCSTART- lines left out; a required split must exist and
    hold a sentence, a missing optional one gives []."""
    path = os.path.join(data_dir, f"{split}.txt")
    if not os.path.exists(path):
        if required:
            raise FileNotFoundError(f"{path}: not found; --data_dir needs train.txt and dev.txt (test.txt optional)")
        return []
    sentences = [s for s in read_conll(path, limits=limits) if not s.docstart]
    if required and not sentences:
        raise ValueError(f"{path}: no sentences")
    return sentences
