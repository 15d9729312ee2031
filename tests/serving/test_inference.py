"""inference.py end to end on the tiny trained model."""
import json
import os

import pytest

import inference
from ner.data import conlleval
from ner.data.conll import read_conll
from ner.data.schemes import convert_tags, detect_scheme


@pytest.mark.parametrize("fixture", ["model_dir", "feature_model_dir"])
def test_conll_output_is_input_plus_a_tag_column(fixture, corpus_dir, tmp_path, request):
    model_dir = request.getfixturevalue(fixture)
    source = os.path.join(corpus_dir, "test.txt")
    pred = tmp_path / "pred.txt"
    inference.main(["--model_dir", model_dir, "--input", source, "--output", str(pred)])
    lines_in = open(source, encoding="utf-8").read().splitlines()
    lines_out = pred.read_text(encoding="utf-8").splitlines()
    assert len(lines_out) == len(lines_in)
    for line_in, line_out in zip(lines_in, lines_out):
        if not line_in:
            assert line_out == ""
            continue
        head, tag = line_out.rsplit(" ", 1)
        assert head == line_in
        if line_in.startswith("-DOCSTART-"):
            assert tag == "O"
        else:
            assert tag == "O" or tag[:2] in ("B-", "I-")
    # conlleval counts every token, the DOCSTART lines included.
    counts = conlleval.evaluate(lines_out)
    assert counts.tokens == sum(1 for line in lines_in if line)


def test_output_goes_back_to_the_inputs_scheme(model_dir, corpus_dir, tmp_path):
    sentences = read_conll(os.path.join(corpus_dir, "dev.txt"))
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text("".join(
        "".join(f"{line.rsplit(' ', 1)[0]} {tag}\n" for line, tag in zip(s.lines, convert_tags(s.tags, "iob2", "iob1")))
        + "\n" for s in sentences if not s.docstart))
    out = tmp_path / "out.txt"
    inference.main(["--model_dir", model_dir, "--input", str(iob1), "--output", str(out)])
    predicted = [[t.split()[-1] for t in s.lines] for s in read_conll(str(out))]
    assert detect_scheme(predicted) in ("iob1", "iob2")  # iob2 only if no chunk starts with I-
    assert not any(tag.startswith("B-") and (i == 0 or tags[i - 1][2:] != tag[2:])
                   for tags in predicted for i, tag in enumerate(tags))


def test_text_and_json(model_dir, tmp_path, capsys):
    text = tmp_path / "in.txt"
    text.write_text("Klaus Müller visited Lisbon on Monday.\n\nHello , world\n", encoding="utf-8")
    inference.main(["--model_dir", model_dir, "--input", str(text), "--format", "text"])
    lines = capsys.readouterr().out.split("\n")
    assert lines[:2] == [f"Klaus {lines[0].split()[1]}", f"Müller {lines[1].split()[1]}"]
    assert lines.count("") == 3  # two sentences, each followed by a blank line, then the final newline
    inference.main(["--model_dir", model_dir, "--input", str(text), "--format", "text", "--json"])
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in records] == ["Klaus Müller visited Lisbon on Monday.", "Hello , world"]
    first = records[0]
    assert first["tokens"] == ["Klaus", "Müller", "visited", "Lisbon", "on", "Monday", "."]
    assert len(first["tags"]) == len(first["confidences"]) == 7
    assert all(0.0 < c <= 1.0 for c in first["confidences"])
    for entity in first["entities"]:
        assert first["text"][entity["start"]:entity["end"]] == entity["text"]


@pytest.mark.parametrize("content, message", [
    (b"a NN O\nb\xff NN O\n", "in.txt:2: expected UTF-8"),
    (b"a NN O\nb NN\n", "in.txt:2: expected 3 columns"),
])
def test_bad_input_is_reported_before_loading(model_dir, tmp_path, content, message):
    path = tmp_path / "in.txt"
    path.write_bytes(content)
    with pytest.raises(SystemExit, match=message):
        inference.main(["--model_dir", model_dir, "--input", str(path)])


def test_missing_model_and_missing_columns_are_reported(feature_model_dir, tmp_path):
    path = tmp_path / "in.txt"
    path.write_text("Paris\n")
    with pytest.raises(SystemExit, match="model folder not found"):
        inference.main(["--model_dir", str(tmp_path / "nothing"), "--input", str(path)])
    with pytest.raises(SystemExit, match=r"in.txt:1: the model reads column 3"):
        inference.main(["--model_dir", feature_model_dir, "--input", str(path)])
    with pytest.raises(SystemExit, match="trained with CoNLL feature columns"):
        inference.main(["--model_dir", feature_model_dir, "--input", str(path), "--format", "text"])


def test_stdin_to_stdout_is_a_stream(feature_model_dir, corpus_dir, tmp_path):
    """Each sentence comes back as soon as its blank line went in, while the pipe stays open; the
    tags are those of the file mode (in IOB2, the gold column's scheme of the test corpus)."""
    import subprocess
    import sys
    import threading

    from conftest import ROOT
    source = os.path.join(corpus_dir, "test.txt")
    pred = tmp_path / "pred.txt"
    inference.main(["--model_dir", feature_model_dir, "--input", source, "--output", str(pred), "--scheme", "iob2"])
    expected = pred.read_text(encoding="utf-8").split("\n\n")
    blocks = open(source, encoding="utf-8").read().split("\n\n")
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", feature_model_dir,
                                "--input", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(120, process.kill)  # a command that waits for the end of stdin fails, never hangs
    watchdog.start()
    try:
        for block, answer in list(zip(blocks, expected))[:3]:
            process.stdin.write((block.strip("\n") + "\n\n").encode())
            process.stdin.flush()
            lines = []
            while True:  # the answer arrives while stdin is still open
                line = process.stdout.readline().decode()
                assert line, process.stderr.read().decode()
                if line == "\n":
                    break
                lines.append(line.rstrip("\n"))
            assert "\n".join(lines) == answer.strip("\n")
        rest = "\n\n".join(block.strip("\n") for block in blocks[3:])
        out, err = process.communicate(rest.encode(), timeout=120)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0, err.decode()
    assert out.decode().strip("\n") == "\n\n".join(expected[3:]).strip("\n")
