"""Input that is too large or not in the format asked for, through the real commands: inference.py
(a file and stdin) and the C++ runner refuse it with the same one line, naming the line, the limit
or the flag to use, and change nothing; raw text with NUL and other control characters gives the
same tokens from the checkpoint, the frozen folder on libtagger and the C++ runner."""
import json
import os
import subprocess
import sys

import pytest
from test_cc import cc_build, tagger  # noqa: F401  (cc_build: the fixture that builds inference/cc)

from conftest import ROOT, folder_state

LINE_LIMIT = "expected a line of at most 65536 bytes (--max_line_bytes raises it)"
TOKEN_LIMIT = "expected a sentence of at most 10000 tokens (--max_sentence_tokens raises it)"
CONLL_AS_TEXT = "found CoNLL token lines (columns ending in a tag) in raw text; tag CoNLL with --format conll"
DOCSTART_AS_TEXT = "found a CoNLL -DOCSTART- line in raw text; tag CoNLL with --format conll"
JSON_NEEDS_TEXT = "--json writes tagged raw text: use it with --format text"


def no_gold_tag(columns: int, model_columns: int, field: str) -> str:
    return (f"expected a tag ('O' or B-/I-/E-/S- and a type) in the last of {columns} columns, the gold column after "
            f"the {model_columns} the model reads, found {field!r}; raw text? use --format text")


def inference(model_dir, *args, stdin=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", model_dir, *args],
                          stdin=stdin, capture_output=True, timeout=300)



def refused(done, message: str, prefix: str = "", stream: bool = False) -> None:
    """Exit status 1, `message` as the one line on stderr, and nothing on stdout, unless from a
    stream (stdin to stdout), which writes the sentences before the bad line first."""
    assert done.returncode == 1, done.stderr.decode()
    assert stream or done.stdout == b""
    lines = done.stderr.decode().splitlines()
    timings = ("tagger: loaded in", "tagger: per ")  # the C++ runner's figures, after every run
    assert [line for line in lines if not line.startswith(timings)] == [prefix + message]


def refused_everywhere(model_dir, frozen, cc_build, tmp_path, data: bytes, message: str, *args):  # noqa: F811
    """inference.py on a file and on stdin, and the C++ runner on stdin, refuse `data` with
    `message` (after `NAME:`), writing nothing and changing no file."""
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    before = folder_state(tmp_path, model_dir, frozen)
    refused(inference(model_dir, "--input", str(source), "--output", str(tmp_path / "out.txt"), *args),
            f"{source}:{message}")
    with open(source, "rb") as stdin:
        refused(inference(model_dir, "--input", "-", *args, stdin=stdin), f"<stdin>:{message}", stream=True)
    refused(tagger(cc_build, frozen, data, *args), f"<stdin>:{message}", "tagger: ", stream=True)
    assert folder_state(tmp_path, model_dir, frozen) == before


# --- bounded input (issue 29, case 7) ----------------------------------------------------------

def test_dev_zero_is_refused_at_the_line_limit(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    before = folder_state(tmp_path, model_dir)
    refused(inference(model_dir, "--input", "/dev/zero", "--output", str(tmp_path / "out.txt")),
            f"/dev/zero:1: {LINE_LIMIT}")
    with open("/dev/zero", "rb") as zeros:
        refused(inference(model_dir, "--input", "-", "--format", "text", stdin=zeros), f"<stdin>:1: {LINE_LIMIT}")
    with open("/dev/zero", "rb") as zeros:
        done = subprocess.run([os.path.join(cc_build, "tagger"), frozen_dir], stdin=zeros, capture_output=True)
    refused(done, f"<stdin>:1: {LINE_LIMIT}", "tagger: ")
    assert folder_state(tmp_path, model_dir) == before


@pytest.mark.parametrize("name, data, args, message", [
    ("one long word", b"Paris\n" + b"x" * 200_000 + b"\n", (), f"2: {LINE_LIMIT}"),
    ("one long word as text", b"Paris\n" + b"x" * 200_000 + b"\n", ("--format", "text"), f"2: {LINE_LIMIT}"),
    ("600 KB of text", b"Paris " * 100_000 + b"\n", ("--format", "text"), f"1: {LINE_LIMIT}"),
    ("a long CoNLL sentence", b"-DOCSTART- O\n\n" + b"Paris O\n" * 10_001, (), f"10003: {TOKEN_LIMIT}"),
    ("a long text sentence", b"Paris\n" + b"a " * 10_001 + b"\n", ("--format", "text", "--max_line_bytes", "30000"),
     f"2: {TOKEN_LIMIT}"),
])
def test_a_line_or_sentence_over_the_limit_is_refused(name, data, args, message, model_dir, frozen_dir, cc_build,  # noqa: F811
                                                      tmp_path):
    refused_everywhere(model_dir, frozen_dir, cc_build, tmp_path, data, message, *args)


def test_the_flags_raise_the_limits(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    data = b"Paris " * 12_000 + b"\n"  # 72,000 bytes, 12,000 tokens
    args = ("--format", "text", "--max_line_bytes", "80000", "--max_sentence_tokens", "12000")
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    done = inference(model_dir, "--input", str(source), *args)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.count(b"\n") == 12_001
    runner = tagger(cc_build, frozen_dir, data, *args)
    assert runner.returncode == 0, runner.stderr.decode()
    assert runner.stdout == done.stdout


# --- input not in its format (cases 8, 9, 10, 11) ----------------------------------------------

def test_conll_given_as_text_is_refused(model_dir, frozen_dir, corpus_dir, cc_build, tmp_path):  # noqa: F811
    with open(os.path.join(corpus_dir, "test.txt"), "rb") as f:
        corpus = f.read()
    assert corpus.startswith(b"-DOCSTART-")
    refused_everywhere(model_dir, frozen_dir, cc_build, tmp_path, corpus, f"1: {DOCSTART_AS_TEXT}", "--format", "text")
    sentences = b"\n".join(line for line in corpus.split(b"\n") if not line.startswith(b"-DOCSTART-")).lstrip(b"\n")
    refused_everywhere(model_dir, frozen_dir, cc_build, tmp_path, sentences, f"1: {CONLL_AS_TEXT}", "--format", "text")


def test_prose_given_as_conll_is_refused(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    refused_everywhere(model_dir, frozen_dir, cc_build, tmp_path, b"Angela Merkel flew to Paris on Monday .\n",
                       f"1: {no_gold_tag(8, 1, '.')}")


def test_a_gold_column_without_a_tag_is_refused(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    refused_everywhere(model_dir, frozen_dir, cc_build, tmp_path, b"Angela B-PER\nMerkel I-PER\n\nAngela XYZ\n",
                       f"4: {no_gold_tag(2, 1, 'XYZ')}")


@pytest.mark.parametrize("data", [b"Angela\nMerkel\n\nParis\n", b"Angela NNP B-NP\nflew VBD B-VP\n",
                                  b"Angela B-PER\nMerkel I-PER\n"])
def test_conll_without_a_gold_column_or_with_one_is_tagged(data, model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    done = inference(model_dir, "--input", str(source), "--scheme", "iob2")
    assert done.returncode == 0, done.stderr.decode()
    runner = tagger(cc_build, frozen_dir, data)
    assert runner.returncode == 0, runner.stderr.decode()
    assert runner.stdout == done.stdout


def test_prose_that_merely_ends_in_a_tag_like_word_is_tagged_as_text(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    data = b"They flew a B-52\nWe drove the I-95 north\n\nCall me O\n"
    source = tmp_path / "in.txt"
    source.write_bytes(data)
    done = inference(model_dir, "--input", str(source), "--format", "text")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.count(b"\n\n") == 3
    runner = tagger(cc_build, frozen_dir, data, "--format", "text")
    assert runner.returncode == 0, runner.stderr.decode()
    assert runner.stdout == done.stdout


def test_json_without_text_is_refused(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    source = tmp_path / "in.txt"
    source.write_bytes(b"Angela Merkel flew to Paris .\n")
    before = folder_state(tmp_path, model_dir)
    refused(inference(model_dir, "--input", str(source), "--json"), JSON_NEEDS_TEXT)
    refused(inference(model_dir, "--input", str(source), "--json", "--format", "conll"), JSON_NEEDS_TEXT)
    refused(tagger(cc_build, frozen_dir, source.read_bytes(), "--json"), JSON_NEEDS_TEXT, "tagger: ")
    refused(tagger(cc_build, frozen_dir, source.read_bytes(), "--json", "--format", "conll"), JSON_NEEDS_TEXT,
            "tagger: ")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "beam_tag.py"), "--model_dir", model_dir, "--input",
                           str(source), "--output", str(tmp_path / "beam"), "--json"], capture_output=True, timeout=300)
    refused(done, JSON_NEEDS_TEXT)
    assert folder_state(tmp_path, model_dir) == before


# --- control characters in raw text (case 19) ----------------------------------------------------

CONTROL_TEXT = ("Angela\x00Merkel flew to Paris\x00.\n"
                "a\x00\u0301b Berlin\x01Rome\x1fOslo\x7fLima\n"
                "Paris\x85Rome\x9fBonn \x1b[1mMerkel\x00\x00\n"
                "\x00Angela Merkel\x0bvisited\x0cParis\x1c.\n").encode()


def test_control_characters_give_the_same_tokens_in_every_runtime(model_dir, frozen_dir, cc_build, tmp_path):  # noqa: F811
    source = tmp_path / "in.txt"
    source.write_bytes(CONTROL_TEXT)
    checkpoint = inference(model_dir, "--input", str(source), "--format", "text", "--json")
    assert checkpoint.returncode == 0, checkpoint.stderr.decode()
    env = {**os.environ, "NER_TAGGER_LIB": os.path.join(cc_build, "libtagger.so")}
    library = subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", frozen_dir,
                              "--input", str(source), "--format", "text", "--json"], capture_output=True, env=env,
                             timeout=300)
    assert library.returncode == 0, library.stderr.decode()
    runner = tagger(cc_build, frozen_dir, CONTROL_TEXT, "--format", "text", "--json")
    assert runner.returncode == 0, runner.stderr.decode()
    expected = [json.loads(line) for line in checkpoint.stdout.splitlines()]
    assert [record["text"] for record in expected] == CONTROL_TEXT.decode().split("\n")[:-1]
    assert expected[0]["tokens"] == ["Angela", "Merkel", "flew", "to", "Paris", "."]
    assert expected[1]["tokens"][:3] == ["a", "\u0301", "b"]  # a NUL, unlike a space, leaves a combining mark alone
    for answers in (library.stdout, runner.stdout):
        got = [json.loads(line) for line in answers.splitlines()]
        for answer, reference in zip(got, expected, strict=True):
            assert {**answer, "confidences": None, "entities": [{**e, "confidence": None} for e in answer["entities"]]} \
                == {**reference, "confidences": None,
                    "entities": [{**e, "confidence": None} for e in reference["entities"]]}
            assert answer["confidences"] == pytest.approx(reference["confidences"], abs=2e-4)
