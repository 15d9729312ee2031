"""Chunk evaluation identical to conlleval.pl (CoNLL-2000, version 2004-01-26).

Command line, same options and same output bytes as the Perl script:

    python etc/conlleval.py [-l] [-r] [-d DELIM] [-o TAG] [FILE] < FILE

Each input line holds fields separated by DELIM (a regular expression,
default a single space, so two spaces make an empty field, as in Perl); the
last two fields are the gold tag and the guessed tag.  An empty line, or a
line whose first field is "-X-", ends a sentence.  Other lines, including
CoNLL-2003 "-DOCSTART- -X- O O" lines, are ordinary tokens for the Perl.

Unlike the Perl, a FILE argument may replace standard input.

The Perl quirks that change output are kept on purpose:
  * -o only matters with -r;
  * "S-" tags have no rule of their own (see chunk_f1 for IOBES input);
  * the untyped chunk type "" is printed twice when both gold and guessed
    have such chunks.
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

SENTENCE_BOUNDARY = "-X-"  # first field of a sentence break line

# (previous chunk tag, current chunk tag) pairs the Perl lists explicitly.
_ENDING_TRANSITIONS = {
    ("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"),
    ("E", "E"), ("E", "I"), ("E", "O"),
}
_STARTING_TRANSITIONS = {
    ("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"),
    ("E", "E"), ("E", "I"), ("O", "E"),
}
_OUTSIDE_LIKE_TAGS = ("O", ".")
_ONE_TOKEN_CHUNK_TAGS = ("[", "]")

_DIE_STATUS = 255  # exit status of Perl's die (errno is 0 at that point)

USAGE = """\
usage: {prog} [-l] [-r] [-d DELIM] [-o TAG] [FILE] < FILE

Scores tagged chunks as conlleval.pl (CoNLL-2000) does, with the same output. Each input line
ends with two fields, the gold tag and the guessed tag; a blank line ends a sentence.

  -l        LaTeX table output
  -r        raw tags, without B-/I- prefixes: every tag but the outside tag is a one-token chunk
  -d DELIM  field delimiter, a regular expression (default: one space)
  -o TAG    the outside tag with -r (default: O)
  FILE      read FILE instead of standard input
  -h, --help  this message
"""


class FormatError(ValueError):
    """An input line the Perl script rejects, with the Perl's exit status."""

    def __init__(self, message: str, exit_status: int):
        super().__init__(message)
        self.exit_status = exit_status


@dataclass
class Counts:
    """Counters of one evaluation (the Perl names in brackets)."""

    tokens: int = 0          # [$tokenCounter] sentence breaks excluded
    correct_tags: int = 0    # [$correctTags] tokens whose two tags agree
    gold_chunks: int = 0     # [$foundCorrect]
    guessed_chunks: int = 0  # [$foundGuessed]
    correct_chunks: int = 0  # [$correctChunk]
    gold_chunks_by_type: Counter[str] = field(default_factory=Counter)
    guessed_chunks_by_type: Counter[str] = field(default_factory=Counter)
    correct_chunks_by_type: Counter[str] = field(default_factory=Counter)


def _split_fields(delimiter: re.Pattern[str], line: str) -> list[str]:
    fields = delimiter.split(line)
    while fields and fields[-1] == "":  # Perl's split drops trailing empties
        fields.pop()
    return fields


def _split_tag(tag: str) -> tuple[str, str]:
    """Split "B-NP" into chunk tag "B" and type "NP" at the first hyphen."""
    chunk_tag, hyphen, chunk_type = tag.partition("-")
    if not hyphen:
        return tag, ""
    # The Perl replaces a false type, i.e. "0", by "".
    return chunk_tag, "" if chunk_type == "0" else chunk_type


def _raw_tag(tag: str, outside: str) -> str:
    """-r: every tag but the outside tag (or "O") is a one-token chunk."""
    if tag == outside:
        tag = "O"
    return tag if tag == "O" else "B-" + tag


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, chunk_type: str) -> bool:
    """Whether a chunk ended between the previous and the current token."""
    return (
        (prev_tag, tag) in _ENDING_TRANSITIONS
        or (prev_tag not in _OUTSIDE_LIKE_TAGS and prev_type != chunk_type)
        or prev_tag in _ONE_TOKEN_CHUNK_TAGS
    )


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, chunk_type: str) -> bool:
    """Whether a chunk started between the previous and the current token."""
    return (
        (prev_tag, tag) in _STARTING_TRANSITIONS
        or (tag not in _OUTSIDE_LIKE_TAGS and prev_type != chunk_type)
        or tag in _ONE_TOKEN_CHUNK_TAGS
    )


def evaluate(
    lines: Iterable[str],
    delimiter: str | None = None,
    outside: str = "O",
    raw: bool = False,
) -> Counts:
    """Count tokens and chunks of conlleval-format lines.

    delimiter is a regular expression (None: a single space); outside is the
    -o tag and raw the -r flag.  Raises FormatError like the Perl dies.
    """
    field_pattern = re.compile(" " if delimiter is None else delimiter)
    counts = Counts()
    fields_per_line = None  # fixed by the first non-empty line
    in_correct_chunk = False  # gold and guessed chunk agree so far
    last_gold_tag, last_gold_type = "O", ""
    last_guessed_tag, last_guessed_type = "O", ""

    for line in lines:
        line = line.removesuffix("\n")
        fields = _split_fields(field_pattern, line)
        if fields_per_line is None:
            if fields:
                fields_per_line = len(fields)
        elif fields and len(fields) != fields_per_line:
            raise FormatError(
                "unexpected number of features: %d (%d)" % (len(fields), fields_per_line),
                exit_status=1,
            )
        is_boundary = not fields or fields[0] == SENTENCE_BOUNDARY
        if is_boundary:
            fields = [SENTENCE_BOUNDARY, "O", "O"]
        if len(fields) < 2:
            raise FormatError(
                f"conlleval: unexpected number of features in line {line}",
                exit_status=_DIE_STATUS,
            )
        gold, guessed = fields[-2], fields[-1]
        if raw:
            gold, guessed = _raw_tag(gold, outside), _raw_tag(guessed, outside)
        gold_tag, gold_type = _split_tag(gold)
        guessed_tag, guessed_type = _split_tag(guessed)

        gold_ended = _end_of_chunk(last_gold_tag, gold_tag, last_gold_type, gold_type)
        guessed_ended = _end_of_chunk(
            last_guessed_tag, guessed_tag, last_guessed_type, guessed_type
        )
        gold_started = _start_of_chunk(last_gold_tag, gold_tag, last_gold_type, gold_type)
        guessed_started = _start_of_chunk(
            last_guessed_tag, guessed_tag, last_guessed_type, guessed_type
        )

        if in_correct_chunk:
            if gold_ended and guessed_ended and last_guessed_type == last_gold_type:
                in_correct_chunk = False
                counts.correct_chunks += 1
                counts.correct_chunks_by_type[last_gold_type] += 1
            elif gold_ended != guessed_ended or guessed_type != gold_type:
                in_correct_chunk = False
        if gold_started and guessed_started and guessed_type == gold_type:
            in_correct_chunk = True
        if gold_started:
            counts.gold_chunks += 1
            counts.gold_chunks_by_type[gold_type] += 1
        if guessed_started:
            counts.guessed_chunks += 1
            counts.guessed_chunks_by_type[guessed_type] += 1
        if not is_boundary:
            if gold_tag == guessed_tag and gold_type == guessed_type:
                counts.correct_tags += 1
            counts.tokens += 1

        last_gold_tag, last_gold_type = gold_tag, gold_type
        last_guessed_tag, last_guessed_type = guessed_tag, guessed_type

    if in_correct_chunk:
        counts.correct_chunks += 1
        counts.correct_chunks_by_type[last_gold_type] += 1
    return counts


def metrics(counts: Counts, chunk_type: str | None = None) -> tuple[float, float, float]:
    """(precision, recall, FB1) in percent, overall or for one chunk type.

    A zero denominator gives 0.0, as in the Perl.
    """
    if chunk_type is None:
        correct, guessed, gold = counts.correct_chunks, counts.guessed_chunks, counts.gold_chunks
    else:
        correct = counts.correct_chunks_by_type[chunk_type]
        guessed = counts.guessed_chunks_by_type[chunk_type]
        gold = counts.gold_chunks_by_type[chunk_type]
    precision = 100 * correct / guessed if guessed else 0.0
    recall = 100 * correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def _reported_types(counts: Counts) -> list[str]:
    """Chunk types in the Perl's print order.

    The Perl skips a repeated name only when the previous name is true in
    Perl's sense, so the type "" is kept twice when gold and guessed both
    have it ("0" never occurs: _split_tag maps it to "").
    """
    types: list[str] = []
    previous = None
    for chunk_type in sorted([*counts.gold_chunks_by_type, *counts.guessed_chunks_by_type]):
        if not previous or previous != chunk_type:
            types.append(chunk_type)
        previous = chunk_type
    return types


def report(counts: Counts, latex: bool = False) -> str:
    """The text conlleval.pl prints for these counts (with -l if latex)."""
    if latex:
        return _latex_report(counts)
    text = (
        f"processed {counts.tokens} tokens with {counts.gold_chunks} phrases; "
        f"found: {counts.guessed_chunks} phrases; correct: {counts.correct_chunks}.\n"
    )
    if counts.tokens > 0:
        accuracy = 100 * counts.correct_tags / counts.tokens
        text += "accuracy: %6.2f%%; precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f\n" % (
            accuracy, *metrics(counts)
        )
    for chunk_type in _reported_types(counts):
        text += "%17s: precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %d\n" % (
            chunk_type, *metrics(counts, chunk_type), counts.guessed_chunks_by_type[chunk_type]
        )
    return text


def _latex_report(counts: Counts) -> str:
    text = r"        & Precision &  Recall  & F$_{\beta=1} \\\hline"
    for chunk_type in _reported_types(counts):
        text += "\n" + r"%-7s &  %6.2f\%% & %6.2f\%% & %6.2f \\" % (
            chunk_type, *metrics(counts, chunk_type)
        )
    text += "\\hline\n"
    text += r"Overall &  %6.2f\%% & %6.2f\%% & %6.2f \\\hline" % metrics(counts) + "\n"
    return text


def _as_iob2(tag: str) -> str:
    """Rewrite an IOBES tag as IOB2; IOB1 and IOB2 tags are returned as is."""
    prefix, hyphen, chunk_type = tag.partition("-")
    if hyphen and prefix == "S":
        return "B-" + chunk_type
    if hyphen and prefix == "E":
        return "I-" + chunk_type
    return tag


def chunk_f1(
    gold_tag_seqs: Sequence[Sequence[str]], pred_tag_seqs: Sequence[Sequence[str]]
) -> float:
    """Overall FB1 in percent of tagged sentences (see chunk_counts)."""
    return metrics(chunk_counts(gold_tag_seqs, pred_tag_seqs))[2]


def chunk_counts(
    gold_tag_seqs: Sequence[Sequence[str]], pred_tag_seqs: Sequence[Sequence[str]]
) -> Counts:
    """evaluate()'s counts of tagged sentences, as if printed one token a line.

    IOBES tags are first rewritten as IOB2: the Perl rules have no "S" tag
    and no E->B chunk start, so adjacent IOBES chunks of one type would merge.
    """
    if len(gold_tag_seqs) != len(pred_tag_seqs):
        raise ValueError(
            f"{len(gold_tag_seqs)} gold sentences but {len(pred_tag_seqs)} predicted"
        )
    lines = []
    for index, (gold_tags, pred_tags) in enumerate(zip(gold_tag_seqs, pred_tag_seqs)):
        if len(gold_tags) != len(pred_tags):
            raise ValueError(
                f"sentence {index}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted"
            )
        lines.extend(
            f"w {_as_iob2(gold)} {_as_iob2(pred)}" for gold, pred in zip(gold_tags, pred_tags)
        )
        lines.append("")
    return evaluate(lines)


def _byte_lines(stream: BinaryIO) -> Iterable[str]:
    # Latin-1 maps each byte to one character, so padding, sorting and output
    # bytes match the Perl, which works on bytes.
    for line in stream:
        yield line.decode("latin-1")


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of conlleval.pl; returns the exit status."""
    args = [
        os.fsencode(arg).decode("latin-1")
        for arg in (sys.argv[1:] if argv is None else argv)
    ]
    latex = raw = False
    delimiter = None
    outside = "O"
    while args and args[0].startswith("-"):
        option = args.pop(0)
        if option == "-l":
            latex = True
        elif option == "-r":
            raw = True
        elif option in ("-d", "-o"):
            if not args:
                # The Perl says "delimiter character" for -o too.
                print(f"conlleval: {option} requires delimiter character", file=sys.stderr)
                return _DIE_STATUS
            if option == "-d":
                delimiter = args.pop(0)
            else:
                outside = args.pop(0)
        elif option in ("-h", "--help"):  # the Perl has no help; every other option is its own
            sys.stdout.write(USAGE.format(prog=os.path.basename(sys.argv[0])))
            return 0
        else:
            print(f"conlleval: unknown argument {option}", file=sys.stderr)
            return _DIE_STATUS
    if len(args) > 1:
        print("conlleval: unexpected command line argument", file=sys.stderr)
        return _DIE_STATUS

    try:
        if args:
            with open(args[0], "rb") as stream:
                counts = evaluate(_byte_lines(stream), delimiter, outside, raw)
        else:
            counts = evaluate(_byte_lines(sys.stdin.buffer), delimiter, outside, raw)
    except OSError as error:  # the FILE argument, which the Perl does not have
        print(f"{args[0]}: cannot read: {error.strerror}", file=sys.stderr)
        return 1
    except FormatError as error:
        print(error, file=sys.stderr)
        return error.exit_status
    sys.stdout.buffer.write(report(counts, latex).encode("latin-1"))
    sys.stdout.buffer.flush()
    return 0
