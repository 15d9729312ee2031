"""etc.conlleval against outputs derived by hand from conlleval.pl's logic."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from ner.data.conlleval import FormatError, chunk_f1, evaluate, main, metrics, report

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_script(args, stdin_text):
    """Run `python etc/conlleval.py ARGS < stdin` from the repo root."""
    return subprocess.run(
        [sys.executable, "etc/conlleval.py", *args],
        input=stdin_text.encode("utf-8"),
        capture_output=True,
        cwd=REPO_ROOT,
        check=False,
    )


def lines_of(text):
    return text.splitlines(keepends=True)


# Two sentences, types LOC and PER, IOB2.
# gold chunks:    PER John Smith, LOC New York, PER Mary, LOC Paris     -> 4
# guessed chunks: PER John Smith, LOC New, LOC Mary, LOC Paris, PER today -> 5
# correct: John Smith (PER), Paris (LOC) -> 2; "New" ends before "York".
# tags agree on 7 of 10 tokens (not York, Mary, today): accuracy 70.00.
# overall P = 2/5 = 40.00, R = 2/4 = 50.00, FB1 = 2*40*50/90 = 44.44
# LOC: P = 1/3 = 33.33, R = 1/2 = 50.00, FB1 = 40.00, found 3
# PER: P = 1/2, R = 1/2 -> 50.00 everywhere, found 2
IOB2_INPUT = """\
John B-PER B-PER
Smith I-PER I-PER
lives O O
in O O
New B-LOC B-LOC
York I-LOC O

Mary B-PER B-LOC
visited O O
Paris B-LOC B-LOC
today O B-PER
"""
IOB2_REPORT = """\
processed 10 tokens with 4 phrases; found: 5 phrases; correct: 2.
accuracy:  70.00%; precision:  40.00%; recall:  50.00%; FB1:  44.44
              LOC: precision:  33.33%; recall:  50.00%; FB1:  40.00  3
              PER: precision:  50.00%; recall:  50.00%; FB1:  50.00  2
"""


def test_iob2_mixed_chunks_two_types():
    counts = evaluate(lines_of(IOB2_INPUT))
    assert report(counts) == IOB2_REPORT
    assert metrics(counts) == pytest.approx((40.0, 50.0, 400 / 9))
    assert metrics(counts, "LOC") == pytest.approx((100 / 3, 50.0, 40.0))


def test_script_prints_report_on_stdout():
    result = run_script([], IOB2_INPUT)
    assert result.returncode == 0
    assert result.stdout.decode() == IOB2_REPORT
    assert result.stderr == b""


def test_file_argument_reads_like_stdin(tmp_path):
    path = tmp_path / "pred.txt"
    path.write_text(IOB2_INPUT)
    result = run_script([str(path)], "")
    assert result.stdout.decode() == IOB2_REPORT


# IOB1: I- after O starts a chunk; B- separates adjacent chunks of one type.
# gold:    ORG European Commission, LOC Germany, LOC France (B-), PER Blair -> 4
# guessed: ORG European Commission, LOC Germany France (one chunk), PER Blair -> 3
# correct: ORG, PER (gold I-PER and guessed B-PER both start after O) -> 2
# tags agree on 7 of 9 tokens (not France, Blair): accuracy 77.78
# overall P = 2/3 = 66.67, R = 2/4 = 50.00, FB1 = 57.14
IOB1_INPUT = """\
The O O
European I-ORG I-ORG
Commission I-ORG I-ORG
and O O
Germany I-LOC I-LOC
France B-LOC I-LOC
met O O

Blair I-PER B-PER
spoke O O
"""
IOB1_REPORT = """\
processed 9 tokens with 4 phrases; found: 3 phrases; correct: 2.
accuracy:  77.78%; precision:  66.67%; recall:  50.00%; FB1:  57.14
              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  1
              ORG: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
"""


def test_iob1_input():
    assert report(evaluate(lines_of(IOB1_INPUT))) == IOB1_REPORT


# The Perl's only boundary field is "-X-": a -DOCSTART- line is an ordinary
# (O O) token, so 3 tokens: -DOCSTART-, Peter, Paul.  The "-X-" line is a
# sentence break whatever its tags say, so Peter and Paul are two PER chunks.
DOCSTART_INPUT = """\
-DOCSTART- -X- O O

Peter NNP I-PER I-PER
-X- _ I-PER B-LOC
Paul NNP I-PER I-PER
"""
DOCSTART_REPORT = """\
processed 3 tokens with 2 phrases; found: 2 phrases; correct: 2.
accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00
              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  2
"""


def test_docstart_and_boundary_lines():
    assert report(evaluate(lines_of(DOCSTART_INPUT))) == DOCSTART_REPORT


def test_nothing_found_gives_zeros():
    # One gold PER chunk, no guessed chunk: precision has a zero denominator
    # and is 0.00; recall 0/1; FB1 0 since P + R = 0.  1 of 2 tags agree.
    counts = evaluate(["a B-PER O\n", "b O O\n"])
    assert report(counts) == (
        "processed 2 tokens with 1 phrases; found: 0 phrases; correct: 0.\n"
        "accuracy:  50.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
        "              PER: precision:   0.00%; recall:   0.00%; FB1:   0.00  0\n"
    )
    assert metrics(counts) == (0.0, 0.0, 0.0)


def test_empty_input_prints_only_the_counts_line():
    # No tokens: the Perl skips the accuracy line and there are no types.
    assert report(evaluate([])) == (
        "processed 0 tokens with 0 phrases; found: 0 phrases; correct: 0.\n"
    )


# -r: every tag but O is a one-token chunk (prefixed "B-").
# gold:    PER John, PER Smith, LOC Paris -> 3;  guessed: PER John, PER Smith -> 2
# both guessed chunks are correct; tags agree on 3 of 4 tokens.
# P = 2/2 = 100.00, R = 2/3 = 66.67, FB1 = 80.00
RAW_INPUT = """\
John PER PER
Smith PER PER
in O O
Paris LOC O
"""
RAW_REPORT = """\
processed 4 tokens with 3 phrases; found: 2 phrases; correct: 2.
accuracy:  75.00%; precision: 100.00%; recall:  66.67%; FB1:  80.00
              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0
              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  2
"""


def test_raw_mode():
    assert report(evaluate(lines_of(RAW_INPUT), raw=True)) == RAW_REPORT
    result = run_script(["-r"], RAW_INPUT)
    assert result.stdout.decode() == RAW_REPORT


def test_raw_tags_without_r_form_no_chunks():
    # "PER" has no hyphen: chunk tag "PER" of type "", which never starts a
    # chunk; only the tag agreement (3 of 4) is scored.
    assert report(evaluate(lines_of(RAW_INPUT))) == (
        "processed 4 tokens with 0 phrases; found: 0 phrases; correct: 0.\n"
        "accuracy:  75.00%; precision:   0.00%; recall:   0.00%; FB1:   0.00\n"
    )


# -r -o NONE: NONE is outside.  gold: PER John, LOC Paris; guessed: PER John.
# 1 correct; tags agree on John and in (2 of 3): accuracy 66.67.
# P = 1/1 = 100.00, R = 1/2 = 50.00, FB1 = 66.67
OUTSIDE_INPUT = """\
John PER PER
in NONE NONE
Paris LOC NONE
"""
OUTSIDE_REPORT = """\
processed 3 tokens with 2 phrases; found: 1 phrases; correct: 1.
accuracy:  66.67%; precision: 100.00%; recall:  50.00%; FB1:  66.67
              LOC: precision:   0.00%; recall:   0.00%; FB1:   0.00  0
              PER: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
"""


def test_other_outside_tag():
    assert report(evaluate(lines_of(OUTSIDE_INPUT), outside="NONE", raw=True)) == OUTSIDE_REPORT
    assert run_script(["-r", "-o", "NONE"], OUTSIDE_INPUT).stdout.decode() == OUTSIDE_REPORT


def test_outside_tag_only_matters_in_raw_mode():
    # Like the Perl, -o is read only by the -r code.
    lines = lines_of(IOB2_INPUT)
    assert evaluate(lines, outside="X") == evaluate(lines)


# Tab-separated words may contain spaces.  1 LOC chunk, found and correct.
TAB_INPUT = "New York\tB-LOC\tB-LOC\nis\tO\tO\n"
TAB_REPORT = """\
processed 2 tokens with 1 phrases; found: 1 phrases; correct: 1.
accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00
              LOC: precision: 100.00%; recall: 100.00%; FB1: 100.00  1
"""


@pytest.mark.parametrize("delimiter", ["\t", r"\t"])  # Perl splits on a regex
def test_tab_delimiter(delimiter):
    assert report(evaluate(lines_of(TAB_INPUT), delimiter=delimiter)) == TAB_REPORT
    result = run_script(["-d", delimiter], TAB_INPUT)
    assert result.returncode == 0
    assert result.stdout.decode() == TAB_REPORT


def test_default_delimiter_is_one_space():
    # Split on / /: "New York\tB-LOC\tB-LOC" has 2 fields, "is\tO\tO" 1.
    with pytest.raises(FormatError, match=r"^unexpected number of features: 1 \(2\)$"):
        evaluate(lines_of(TAB_INPUT))
    # Two spaces make an empty field: 4 fields after a 3-field line.
    with pytest.raises(FormatError, match=r"^unexpected number of features: 4 \(3\)$"):
        evaluate(["a B-PER B-PER\n", "b  O O\n"])


# Same counts as IOB2_INPUT; the LaTeX table has no processed/accuracy lines.
IOB2_LATEX = r"""        & Precision &  Recall  & F$_{\beta=1} \\\hline
LOC     &   33.33\% &  50.00\% &  40.00 \\
PER     &   50.00\% &  50.00\% &  50.00 \\\hline
Overall &   40.00\% &  50.00\% &  44.44 \\\hline
"""


def test_latex_output():
    assert report(evaluate(lines_of(IOB2_INPUT)), latex=True) == IOB2_LATEX
    assert run_script(["-l"], IOB2_INPUT).stdout.decode() == IOB2_LATEX


def test_wrong_field_count_from_script():
    result = run_script([], "a B-PER B-PER\nb O\n")
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == "unexpected number of features: 2 (3)\n"


def test_too_few_fields_from_main(monkeypatch, capsys):
    # A single field cannot hold two tags: the Perl dies (status 255).
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"word\n")))
    assert main([]) == 255
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "conlleval: unexpected number of features in line word\n"


def test_untyped_chunks_listed_twice():
    # "B" has no type; the Perl's duplicate filter treats the name "" as
    # false, so the "" line appears once for gold and once for guessed.
    assert report(evaluate(["a B B\n", "b O O\n"])) == (
        "processed 2 tokens with 1 phrases; found: 1 phrases; correct: 1.\n"
        "accuracy: 100.00%; precision: 100.00%; recall: 100.00%; FB1: 100.00\n"
        "                 : precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
        "                 : precision: 100.00%; recall: 100.00%; FB1: 100.00  1\n"
    )


def test_type_names_padded_by_bytes():
    # "PÉR" is 4 bytes in UTF-8; the Perl pads %17s to 17 bytes: 13 spaces.
    result = run_script([], "x B-PÉR B-PÉR\n")
    assert result.stdout.decode().splitlines()[2] == (
        " " * 13 + "PÉR: precision: 100.00%; recall: 100.00%; FB1: 100.00  1"
    )


def sentences_of(text, column):
    """Tag lists of the gold (column -2) or guessed (column -1) tags."""
    return [
        [line.split()[column] for line in block.splitlines()]
        for block in text.split("\n\n")
    ]


def test_chunk_f1_agrees_with_report():
    gold = sentences_of(IOB2_INPUT, -2)
    pred = sentences_of(IOB2_INPUT, -1)
    f1 = chunk_f1(gold, pred)
    assert f1 == pytest.approx(400 / 9)
    assert "FB1: %6.2f\n" % f1 in IOB2_REPORT.splitlines(keepends=True)[1]
    assert chunk_f1(sentences_of(IOB1_INPUT, -2), sentences_of(IOB1_INPUT, -1)) == (
        metrics(evaluate(lines_of(IOB1_INPUT)))[2]
    )


def test_chunk_f1_scores_iobes_as_iob2():
    # Gold has two one-token PER chunks, the guess one two-token PER chunk:
    # no chunk is correct.  The Perl rules alone have no S- start, so they
    # would merge the gold S-PER S-PER and call the guess correct.
    gold, pred = [["S-PER", "S-PER"]], [["B-PER", "E-PER"]]
    assert chunk_f1(gold, pred) == 0.0
    assert metrics(evaluate(["w S-PER B-PER\n", "w S-PER E-PER\n"]))[2] == 100.0
    assert chunk_f1([["B-LOC", "E-LOC", "S-LOC", "O"]], [["B-LOC", "E-LOC", "O", "O"]]) == (
        pytest.approx(200 / 3)  # P = 1/1, R = 1/2
    )


def test_chunk_f1_rejects_length_mismatch():
    with pytest.raises(ValueError, match="sentence 0"):
        chunk_f1([["O", "B-PER"]], [["O"]])


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_prints_the_options_and_exits_0(flag):
    result = run_script(["-d", "\t", flag], "")
    assert result.returncode == 0 and result.stderr == b""
    usage = result.stdout.decode()
    assert usage.startswith("usage: conlleval.py [-l] [-r] [-d DELIM] [-o TAG] [FILE] < FILE\n")
    for option in ("-l ", "-r ", "-d DELIM ", "-o TAG ", "FILE "):
        assert f"\n  {option}" in usage


def test_an_unknown_argument_still_dies_as_the_perl_does():
    result = run_script(["--helpful"], IOB2_INPUT)
    assert (result.returncode, result.stdout, result.stderr) == (255, b"", b"conlleval: unknown argument --helpful\n")
