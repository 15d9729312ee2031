"""ner/data: CoNLL reading and validation, tag schemes (tokenizing raw text: test_text.py)."""

import io
import itertools
import pickle
import random
import sys

import numpy as np
import pytest

from ner.data.conll import InputError, Sentence, format_conll_line, iter_conll, parse_conll, read_conll, read_lines
from ner.data.limits import Limits
from ner.data.schemes import SCHEMES, allowed_transitions, chunk_spans, convert_tags, detect_scheme

CONLL = (
    b"-DOCSTART- -X- -X- O\n"
    b"\n"
    b"Velmar NNP B-NP B-ORG\n"
    b"praises VBZ B-VP O\n"
    b"Lusitanian JJ B-NP B-MISC\n"
    b"\n"
    b"Klara NNP B-NP B-PER\n"
    b"Ostrowski NNP I-NP I-PER\n"
)


# ---------------------------------------------------------------- reading


def test_parse_sentences_columns_and_line_numbers():
    sentences = parse_conll(CONLL, "x.txt")
    assert [s.docstart for s in sentences] == [True, False, False]
    docstart, first, second = sentences
    assert docstart.lines == ("-DOCSTART- -X- -X- O",) and docstart.first_line == 1
    assert first.first_line == 3 and len(first) == 3
    assert first.lines[0] == "Velmar NNP B-NP B-ORG"
    assert first.columns[0] == ("Velmar", "NNP", "B-NP", "B-ORG")
    assert first.words == ("Velmar", "praises", "Lusitanian")
    assert first.tags == ("B-ORG", "O", "B-MISC")
    assert first.column(1) == ("NNP", "VBZ", "JJ")
    assert second.first_line == 7 and second.tags == ("B-PER", "I-PER")


def test_read_conll_from_file_and_stdin(tmp_path, monkeypatch):
    path = tmp_path / "train.txt"
    path.write_bytes(CONLL)
    assert read_conll(str(path)) == parse_conll(CONLL, "any")

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a O\nb\n")))
    with pytest.raises(InputError, match=r"^<stdin>:2: "):
        read_conll("-")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"a O\nb\n")))
    with pytest.raises(InputError, match=r"^dev:2: "):
        read_conll("-", name="dev")


def test_read_conll_names_the_file_in_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b"a O\nb\n")
    with pytest.raises(InputError, match=rf"^{path}:2: "):
        read_conll(str(path))


def test_empty_inputs_give_no_sentences():
    assert parse_conll(b"", "x") == []
    assert parse_conll(b"\n\n  \n\t\n", "x") == []
    assert parse_conll(b"\xef\xbb\xbf", "x") == []


def test_blank_line_runs_and_whitespace_only_lines_separate_once():
    sentences = parse_conll(b"\n\na O\n\n \n\t\n\nb O\nc O\n\n\n", "x")
    assert [s.words for s in sentences] == [("a",), ("b", "c")]
    assert [s.first_line for s in sentences] == [3, 8]


def test_missing_final_blank_line_and_final_newline():
    assert parse_conll(b"a O\nb O", "x") == parse_conll(b"a O\nb O\n\n", "x")
    assert parse_conll(b"a O\nb O", "x")[0].words == ("a", "b")


def test_crlf_line_ends_are_stripped():
    sentences = parse_conll(b"a NN O\r\nb NN B-PER\r\n\r\nc NN O\r\n", "x")
    assert [s.lines for s in sentences] == [("a NN O", "b NN B-PER"), ("c NN O",)]
    assert sentences[0].tags == ("O", "B-PER")


def test_utf8_bom_is_dropped():
    (sentence,) = parse_conll(b"\xef\xbb\xbfK\xc3\xb6ln B-LOC\n", "x")
    assert sentence.lines == ("K\u00f6ln B-LOC",)
    assert sentence.words == ("K\u00f6ln",)


def test_tab_separated_columns_keep_spaces_inside_fields():
    (sentence,) = parse_conll(b"New York\tNNP\tB-LOC\nis\tVBZ\tO\n", "x")
    assert sentence.words == ("New York", "is")
    assert sentence.columns[0] == ("New York", "NNP", "B-LOC")


def test_space_separated_columns_split_on_runs_of_whitespace():
    (sentence,) = parse_conll(b"  Velmar   NNP  B-ORG  \n", "x")
    assert sentence.columns == (("Velmar", "NNP", "B-ORG"),)
    assert sentence.lines == ("  Velmar   NNP  B-ORG  ",)


def test_non_ascii_spaces_stay_inside_tokens():
    (sentence,) = parse_conll("1\u00a0000 CD O\n".encode(), "x")
    assert sentence.words == ("1\u00a0000",)


def test_docstart_is_its_own_sentence_without_blank_lines():
    data = b"a O\n-DOCSTART- -X- -X- O\nb O\nc O\n-DOCSTART-\n"
    sentences = parse_conll(data, "x")
    assert [(s.docstart, s.words, s.first_line) for s in sentences] == [
        (False, ("a",), 1),
        (True, ("-DOCSTART-",), 2),
        (False, ("b", "c"), 3),
        (True, ("-DOCSTART-",), 5),
    ]


def test_docstart_line_may_have_any_column_count():
    data = b"-DOCSTART-\n\na NN O\n-DOCSTART- -X- -X- -X- O\nb NN O\n"
    sentences = parse_conll(data, "x")
    assert [s.docstart for s in sentences] == [True, False, True, False]
    assert sentences[2].columns == (("-DOCSTART-", "-X-", "-X-", "-X-", "O"),)


def test_docstart_does_not_set_the_expected_column_count():
    data = b"-DOCSTART- -X- -X- O\n\na O\nb O\n"
    assert [s.words for s in parse_conll(data, "x")][1] == ("a", "b")


def test_untagged_files_allow_one_column_and_any_last_column():
    sentences = parse_conll(b"Peter\nran\n\nhome\n", "x", tagged=False)
    assert [s.words for s in sentences] == [("Peter", "ran"), ("home",)]
    (sentence,) = parse_conll(b"a NNP\nb VBZ\n", "x", tagged=False)
    assert sentence.tags == ("NNP", "VBZ")


def test_sentence_is_immutable():
    (sentence,) = parse_conll(b"a O\n", "x")
    with pytest.raises(AttributeError):
        sentence.first_line = 2
    assert sentence == Sentence(("a O",), (("a", "O"),), 1)


@pytest.mark.parametrize(
    "data, tagged, prefix, detail",
    [
        (b"a O\nb\xff O\n", True, "f.txt:2: ", "invalid byte 0xff at byte offset 1"),
        (b"a O\n\n\xe2\x82 O\n", True, "f.txt:3: ", "invalid byte 0xe2 at byte offset 0"),
        (b"a NN O\nb NN\n", True, "f.txt:2: ", "expected 3 columns like line 1, found 2"),
        (b"\n\na NN O\n\nb NN B-X I-X\n", True, "f.txt:5: ", "expected 3 columns like line 3, found 4"),
        (b"a\tNN\tO\nb\tO\n", True, "f.txt:2: ", "expected 3 columns like line 1, found 2"),
        (b"a NN\nb\n", False, "f.txt:2: ", "expected 2 columns like line 1, found 1"),
        (b"\nalone\n", True, "f.txt:2: ", "expected at least 2 columns (word and tag), found 1"),
        (b"a\t\tO\n", True, "f.txt:1: ", "column 2 of 3 empty"),
        (b"a\tNN\t\n", True, "f.txt:1: ", "column 3 of 3 empty"),
        (b"a\t\n", False, "f.txt:1: ", "column 2 of 2 empty"),
        (b"a O\nb PER\n", True, "f.txt:2: ", "found 'PER'"),
        (b"a B-\n", True, "f.txt:1: ", "found 'B-'"),
        (b"a X-PER\n", True, "f.txt:1: ", "found 'X-PER'"),
        (b"a o\n", True, "f.txt:1: ", "found 'o'"),
        (b"a\tO \n", True, "f.txt:1: ", "found 'O '"),
    ],
)
def test_errors_name_file_and_line(data, tagged, prefix, detail):
    with pytest.raises(InputError) as caught:
        parse_conll(data, "f.txt", tagged=tagged)
    message = str(caught.value)
    assert message.startswith(prefix)
    assert detail in message


def test_error_messages_say_what_was_expected():
    cases = {
        b"\xff O\n": "f:1: expected UTF-8 text, found invalid byte 0xff at byte offset 0 of the line",
        b"a O\nb I-\n": "f:2: expected a tag 'O' or B-/I-/E-/S- followed by a type, found 'I-'",
    }
    for data, message in cases.items():
        with pytest.raises(InputError) as caught:
            parse_conll(data, "f")
        assert str(caught.value) == message


def test_untagged_files_do_not_check_tags():
    (sentence,) = parse_conll(b"a PER\n", "x", tagged=False)
    assert sentence.tags == ("PER",)


def test_input_error_is_a_value_error_and_pickles():
    error = InputError("f.txt", 7, "expected something")
    assert isinstance(error, ValueError)
    assert (error.name, error.line, error.expected) == ("f.txt", 7, "expected something")
    assert str(pickle.loads(pickle.dumps(error))) == "f.txt:7: expected something"


# ---------------------------------------------------------------- tag schemes

# The same chunks in each scheme: adjacent same-type chunks, single-token chunks,
# chunks at the start and at the end of the sentence.
HAND_WRITTEN = [
    {
        "iob1": ["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"],
        "iob2": ["B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"],
        "iobes": ["B-PER", "E-PER", "S-PER", "O", "S-LOC", "S-ORG", "B-ORG", "E-ORG"],
        "spans": [("PER", 0, 2), ("PER", 2, 3), ("LOC", 4, 5), ("ORG", 5, 6), ("ORG", 6, 8)],
    },
    {
        "iob1": ["I-MISC", "B-MISC", "B-MISC", "I-MISC", "I-MISC"],
        "iob2": ["B-MISC", "B-MISC", "B-MISC", "I-MISC", "I-MISC"],
        "iobes": ["S-MISC", "S-MISC", "B-MISC", "I-MISC", "E-MISC"],
        "spans": [("MISC", 0, 1), ("MISC", 1, 2), ("MISC", 2, 5)],
    },
    {
        "iob1": ["O", "O", "I-X"],
        "iob2": ["O", "O", "B-X"],
        "iobes": ["O", "O", "S-X"],
        "spans": [("X", 2, 3)],
    },
    {"iob1": ["O"], "iob2": ["O"], "iobes": ["O"], "spans": []},
    {"iob1": [], "iob2": [], "iobes": [], "spans": []},
]


@pytest.mark.parametrize("case", HAND_WRITTEN)
def test_hand_written_round_trips(case):
    for source, target in itertools.product(SCHEMES, SCHEMES):
        assert convert_tags(case[source], source, target) == case[target], (source, target)
    for scheme in SCHEMES:
        assert chunk_spans(case[scheme], scheme) == case["spans"]


def random_spans(rng, length):
    """Non-overlapping chunks over `length` tokens, often adjacent and of the same type."""
    spans, position = [], 0
    while position < length:
        if rng.random() < 0.3:
            position += 1
            continue
        end = min(length, position + rng.randint(1, 3))
        spans.append((rng.choice("AB"), position, end))
        position = end
    return spans


def iob2_from_spans(spans, length):
    tags = ["O"] * length
    for chunk_type, start, end in spans:
        tags[start:end] = [f"B-{chunk_type}"] + [f"I-{chunk_type}"] * (end - start - 1)
    return tags


def test_random_well_formed_round_trips():
    rng = random.Random(20030)
    for _ in range(500):
        length = rng.randint(0, 12)
        spans = random_spans(rng, length)
        iob2 = iob2_from_spans(spans, length)
        iob1 = convert_tags(iob2, "iob2", "iob1")
        iobes = convert_tags(iob1, "iob1", "iobes")
        assert convert_tags(iobes, "iobes", "iob2") == iob2
        assert convert_tags(iobes, "iobes", "iob1") == iob1
        assert convert_tags(iob2, "iob2", "iobes") == iobes
        for scheme, tags in (("iob1", iob1), ("iob2", iob2), ("iobes", iobes)):
            assert chunk_spans(tags, scheme) == spans
            assert convert_tags(tags, scheme, scheme) == tags


@pytest.mark.parametrize(
    "tags, spans",
    [
        (["I-PER", "I-PER"], [("PER", 0, 2)]),  # I- with no opener opens
        (["O", "I-PER", "I-LOC"], [("PER", 1, 2), ("LOC", 2, 3)]),  # type change opens
        (["B-PER", "I-LOC", "I-LOC"], [("PER", 0, 1), ("LOC", 1, 3)]),
        (["E-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 2)]),  # E- with no opener opens and closes
        (["B-PER", "I-PER"], [("PER", 0, 2)]),  # IOBES chunk left open at the end
        (["B-PER", "O"], [("PER", 0, 1)]),
        (["S-PER", "I-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 3)]),  # S- closes its chunk
        (["B-PER", "S-PER", "E-PER"], [("PER", 0, 1), ("PER", 1, 2), ("PER", 2, 3)]),
        (["B-PER", "E-LOC"], [("PER", 0, 1), ("LOC", 1, 2)]),
        (["B-PER", "<pad>", "I-PER"], [("PER", 0, 1), ("PER", 2, 3)]),  # other names count as O
    ],
)
def test_ill_formed_sequences_decode_like_conlleval(tags, spans):
    for scheme in SCHEMES:
        assert chunk_spans(tags, scheme) == spans


def test_converting_ill_formed_input_follows_chunk_spans():
    rng = random.Random(7)
    tag_set = ["O", "<pad>"] + [f"{p}-{t}" for p in "BIES" for t in "AB"]
    for _ in range(500):
        tags = [rng.choice(tag_set) for _ in range(rng.randint(0, 8))]
        for source, target in itertools.product(SCHEMES, SCHEMES):
            converted = convert_tags(tags, source, target)
            assert len(converted) == len(tags)
            assert chunk_spans(converted, target) == chunk_spans(tags, source)
            assert convert_tags(converted, target, target) == converted


def test_unknown_scheme_names_raise():
    for call in (
        lambda: convert_tags(["O"], "bio", "iob2"),
        lambda: convert_tags(["O"], "iob2", "IOBES"),
        lambda: chunk_spans(["O"], "bilou"),
        lambda: allowed_transitions(["O"], "iob"),
    ):
        with pytest.raises(ValueError, match="unknown tag scheme"):
            call()


@pytest.mark.parametrize(
    "sequences, scheme",
    [
        ([["B-PER", "I-PER", "O"], ["B-LOC"]], "iob2"),
        ([["O", "O"], []], "iob2"),
        ([], "iob2"),
        ([["B-PER", "I-PER"], ["I-LOC"]], "iob1"),  # I- first in its sentence
        ([["B-PER", "O", "I-PER"]], "iob1"),  # I- after O
        ([["B-PER", "I-LOC"]], "iob1"),  # I- after another type
        ([["I-PER", "B-PER"], ["S-LOC"]], "iobes"),
        ([["B-PER", "E-PER"]], "iobes"),
    ],
)
def test_detect_scheme(sequences, scheme):
    assert detect_scheme(sequences) == scheme
    assert detect_scheme(iter(sequences)) == scheme


# Every prefix with two types, so each scheme also meets tags it does not use.
SMALL_TAG_SET = ["O"] + [f"{prefix}-{chunk_type}" for prefix in "BIES" for chunk_type in ("PER", "LOC")]


def passes(tags, tag_names, matrices):
    transitions, start, end = matrices
    ids = [tag_names.index(tag) for tag in tags]
    return bool(
        start[ids[0]] and end[ids[-1]] and all(transitions[a, b] for a, b in zip(ids, ids[1:]))
    )


@pytest.mark.parametrize("scheme", SCHEMES)
def test_allowed_transitions_accept_exactly_the_well_formed_sequences(scheme):
    matrices = allowed_transitions(SMALL_TAG_SET, scheme)
    transitions, start, end = matrices
    assert transitions.shape == (9, 9) and start.shape == end.shape == (9,)
    assert transitions.dtype == start.dtype == end.dtype == np.bool_
    accepted = 0
    for length in (1, 2, 3):
        for tags in itertools.product(SMALL_TAG_SET, repeat=length):
            well_formed = convert_tags(tags, scheme, scheme) == list(tags)
            assert passes(tags, SMALL_TAG_SET, matrices) == well_formed, tags
            accepted += well_formed
    assert accepted > 0


def test_allowed_transitions_examples():
    names = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC"]
    index = {name: i for i, name in enumerate(names)}

    transitions, start, end = allowed_transitions(names, "iob2")
    assert not transitions[index["O"], index["I-PER"]]
    assert not transitions[index["B-LOC"], index["I-PER"]]
    assert transitions[index["B-PER"], index["I-PER"]] and transitions[index["I-PER"], index["I-PER"]]
    assert not start[index["I-PER"]] and start[index["B-PER"]]
    assert not start[index["S-PER"]] and not transitions[index["O"], index["E-PER"]]

    transitions, start, end = allowed_transitions(names, "iob1")
    assert start[index["I-PER"]] and not start[index["B-PER"]]
    assert transitions[index["I-PER"], index["B-PER"]] and transitions[index["B-PER"], index["B-PER"]]
    assert not transitions[index["O"], index["B-PER"]] and not transitions[index["I-LOC"], index["B-PER"]]
    assert transitions[index["O"], index["I-PER"]] and transitions[index["I-LOC"], index["I-PER"]]

    transitions, start, end = allowed_transitions(names, "iobes")
    assert transitions[index["B-PER"], index["E-PER"]] and not transitions[index["B-PER"], index["O"]]
    assert transitions[index["E-PER"], index["S-PER"]] and not transitions[index["E-PER"], index["I-PER"]]
    assert not end[index["B-PER"]] and not end[index["I-PER"]] and end[index["E-PER"]]
    assert not start[index["I-PER"]] and not start[index["E-PER"]] and start[index["S-PER"]]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_names_that_are_not_tags_are_allowed_everywhere(scheme):
    names = ["<pad>", "O", "B-PER", "I-PER", "E-PER", "S-PER"]
    transitions, start, end = allowed_transitions(names, scheme)
    usable = [True, True, True, True, scheme == "iobes", scheme == "iobes"]
    assert start[0] and end[0]
    assert list(transitions[0]) == usable and list(transitions[:, 0]) == usable


def test_format_conll_line():
    assert format_conll_line("Velmar NNP B-NP B-ORG", "B-ORG") == "Velmar NNP B-NP B-ORG B-ORG"
    assert format_conll_line("Velmar\tNNP\tB-ORG", "I-ORG") == "Velmar\tNNP\tB-ORG\tI-ORG"
    assert format_conll_line("Velmar", "O") == "Velmar O"
    (sentence,) = parse_conll(format_conll_line("New York\tB-LOC", "B-LOC").encode(), "x")
    assert sentence.columns == (("New York", "B-LOC", "B-LOC"),)


# --- bounded reading, and lines that are no CoNLL (issue 29) --------------------------------------

class Trickle(io.RawIOBase):
    """A stream that gives at most `step` bytes per read and counts what it gave."""

    def __init__(self, data: bytes, step: int):
        self.data, self.step, self.given = data, step, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        piece = self.data[self.given:self.given + min(self.step, len(buffer))]
        buffer[:len(piece)] = piece
        self.given += len(piece)
        return len(piece)


@pytest.mark.parametrize("step", [1, 3, 1 << 16])
def test_read_lines_splits_at_newlines_and_refuses_a_line_over_the_limit_in_place(step):
    data = b"abc\r\n\nabcdef\nxy\nabcdefghij" + b"k" * 100 + b"\nlast"
    items = list(read_lines(io.BufferedReader(Trickle(data, step)), "f.txt", 6))
    assert items[:2] == [b"abc\r", b""]
    assert items[2] == b"abcdef" and items[3] == b"xy"
    assert str(items[4]) == "f.txt:5: expected a line of at most 6 bytes (--max_line_bytes raises it)"
    assert items[5:] == [b"last"]


def test_read_lines_stops_reading_a_line_once_it_is_over_the_limit():
    """An endless line (/dev/zero) is refused after the limit and one read, never held whole."""
    stream = Trickle(b"\0" * (1 << 30), 1 << 16)
    first = next(read_lines(io.BufferedReader(stream), "/dev/zero", 1 << 16))
    assert str(first) == "/dev/zero:1: expected a line of at most 65536 bytes (--max_line_bytes raises it)"
    assert stream.given <= 3 << 16


def test_a_sentence_over_the_token_limit_is_refused_at_the_line_past_it():
    data = b"-DOCSTART- O\n\n" + b"a O\n" * 4 + b"\n" + b"b O\n" * 5
    assert len(parse_conll(data[:data.index(b"b")], "f.txt", limits=Limits(sentence_tokens=4))) == 2
    with pytest.raises(InputError) as caught:
        parse_conll(data + b"\n", "f.txt", limits=Limits(sentence_tokens=4))
    assert str(caught.value) == "f.txt:12: expected a sentence of at most 4 tokens (--max_sentence_tokens raises it)"
    lenient = list(iter_conll(read_lines(io.BytesIO(data + b"\nc O\n"), "f.txt"), "f.txt",
                              limits=Limits(sentence_tokens=4)))
    assert [str(item) if isinstance(item, InputError) else item.words for item in lenient] == [
        ("-DOCSTART-",), ("a",) * 4, "f.txt:12: expected a sentence of at most 4 tokens (--max_sentence_tokens "
        "raises it)", ("c",)]


@pytest.mark.parametrize("data, model_columns, message", [
    (b"Angela Merkel flew to Paris on Monday .\n", 1, "f.txt:1: expected a tag ('O' or B-/I-/E-/S- and a type) in "
     "the last of 8 columns, the gold column after the 1 the model reads, found '.'; raw text? use --format text"),
    (b"Angela B-PER\n\nAngela XYZ\n", 1, "f.txt:3: expected a tag ('O' or B-/I-/E-/S- and a type) in the last of 2 "
     "columns, the gold column after the 1 the model reads, found 'XYZ'; raw text? use --format text"),
    (b"Velmar NNP B-NP B-ORG\nsigns VBZ B-VP NN\n", 3, "f.txt:2: expected a tag ('O' or B-/I-/E-/S- and a type) in the "
     "last of 4 columns, the gold column after the 3 the model reads, found 'NN'; raw text? use --format text"),
    (b"a\x00b O\n", None, "f.txt:1: expected text, found a NUL byte at byte offset 1 of the line"),
])
def test_a_column_after_those_the_model_reads_must_hold_a_tag(data, model_columns, message):
    with pytest.raises(InputError) as caught:
        list(iter_conll(read_lines(io.BytesIO(data), "f.txt"), "f.txt", model_columns=model_columns, strict=True))
    assert str(caught.value) == message


@pytest.mark.parametrize("data, model_columns", [
    (b"Angela\nMerkel\n", 1),  # words only
    (b"Velmar NNP B-NP\nsigns VBZ B-VP\n", 3),  # word and the model's feature columns
    (b"Velmar NNP B-NP B-ORG\nsigns VBZ B-VP O\n", 3),  # and a gold column
    (b"Velmar B-ORG\nsigns O\n", 1),
])
def test_conll_with_or_without_a_gold_column_is_read(data, model_columns):
    sentences = list(iter_conll(read_lines(io.BytesIO(data), "f.txt"), "f.txt", model_columns=model_columns,
                                strict=True))
    assert [len(s) for s in sentences] == [2]
