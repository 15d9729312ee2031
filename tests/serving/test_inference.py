"""inference.py end to end on the tiny trained model."""
import json
import os

import pytest

import inference
from conftest import documents_as_text
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


# --- models that read document context (bert_context=document) --------------------------------

def inference_stream(model_dir: str, data: bytes, *options):
    """inference.py --input - with data on its stdin: the stream."""
    import subprocess
    import sys

    from conftest import ROOT
    return subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", model_dir, "--input", "-",
                           *options], input=data, capture_output=True, timeout=300)


def inference_file(model_dir: str, path, folder, *options) -> bytes:
    """What inference.py writes for the file at path (into folder)."""
    out = os.path.join(folder, os.path.basename(path) + ".out")
    inference.main(["--model_dir", model_dir, "--input", str(path), "--output", out, *options])
    with open(out, "rb") as f:
        return f.read()


# Tagged in other batches (the stream's against the file's), a sentence's float sums change in their
# last bits, and a confidence written with 4 decimals can change in its last digit.
TOLERANCE = 2e-4


def without_confidences(record: dict) -> dict:
    return {**record, "confidences": None, "entities": [{**e, "confidence": None} for e in record["entities"]]}


def assert_same_answers(got: bytes, expected: bytes):
    """The same JSON lines, confidences to TOLERANCE."""
    got, expected = ([json.loads(line) for line in lines.splitlines()] for lines in (got, expected))
    assert [without_confidences(r) for r in got] == [without_confidences(r) for r in expected]
    for answer, reference in zip(got, expected):
        assert answer["confidences"] == pytest.approx(reference["confidences"], abs=TOLERANCE), answer["text"]


def test_a_document_model_streams_conll_as_it_tags_the_file(document_model_dir, corpus_dir, tmp_path, monkeypatch):
    """From stdin, each sentence is tagged beside the words of its -DOCSTART- document, as in a file."""
    import io

    from ner.data.documents import document_contexts
    from ner.serving import tag_file
    from ner.serving.loaders import load_model
    source = os.path.join(corpus_dir, "test.txt")
    with open(source, "rb") as f:
        data = f.read()
    done = inference_stream(document_model_dir, data)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == inference_file(document_model_dir, source, tmp_path, "--scheme", "iob2")
    # What the stream gives the model: each sentence with its document's words around it.
    model, seen = load_model(document_model_dir), []
    predict = model.predict

    def recording(words, lengths, features, left_context, right_context):
        for row, length in enumerate(lengths):
            seen.append((tuple(words[row, :length]), tuple(w for w in left_context[row] if w),
                         tuple(w for w in right_context[row] if w)))
        return predict(words, lengths, features, left_context, right_context)

    monkeypatch.setattr(model, "predict", recording)
    tag_file.tag_stream(model, io.BytesIO(data), io.StringIO(), False, False, "iob2", 8)
    sentences = read_conll(source)
    expected = [(s.words, *context) for s, context in zip(sentences, document_contexts(sentences, 16))
                if not s.docstart]
    assert sorted(seen) == sorted(expected)
    assert sum(1 for _, left, right in expected if left or right) > len(expected) // 2  # context to see


def test_a_document_model_streams_text_as_it_tags_the_file(document_model_dir, corpus_dir, tmp_path):
    """Blank lines end documents: each is tagged once it ends, while stdin stays open, and the
    stream says what the file mode says; the context matters (each line alone scores otherwise)."""
    import subprocess
    import sys
    import threading

    from conftest import ROOT
    documents = documents_as_text(os.path.join(corpus_dir, "test.txt"))
    text = tmp_path / "in.txt"
    text.write_text("\n\n".join("\n".join(document) for document in documents) + "\n", encoding="utf-8")
    expected = inference_file(document_model_dir, text, tmp_path, "--format", "text", "--json")
    alone = tmp_path / "alone.txt"
    alone.write_text("\n\n".join(line for document in documents for line in document) + "\n", encoding="utf-8")
    each_alone = [json.loads(line) for line in
                  inference_file(document_model_dir, alone, tmp_path, "--format", "text", "--json").splitlines()]
    in_documents = [json.loads(line) for line in expected.splitlines()]
    assert [r["tokens"] for r in each_alone] == [r["tokens"] for r in in_documents]
    differ = sum(a["confidences"] != pytest.approx(b["confidences"], abs=TOLERANCE)
                 for a, b in zip(each_alone, in_documents))
    assert differ > len(in_documents) // 4, differ  # a stream that dropped the context would fail below

    # The first document comes back once its blank line went in, while stdin stays open; the rest at its end.
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", document_model_dir,
                                "--input", "-", "--format", "text", "--json"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    watchdog = threading.Timer(120, process.kill)
    watchdog.start()
    try:
        process.stdin.write(("\n".join(documents[0]) + "\n\n").encode())
        process.stdin.flush()
        first = b"".join(process.stdout.readline() for _ in documents[0])
        assert first.count(b"\n") == len(documents[0]), process.stderr.read()
        assert_same_answers(first, b"".join(expected.splitlines(keepends=True)[:len(documents[0])]))
        out, err = process.communicate("\n\n".join("\n".join(d) for d in documents[1:]).encode(), timeout=120)
    finally:
        watchdog.cancel()
        process.kill()
    assert process.returncode == 0, err.decode()
    assert_same_answers(first + out, expected)


def test_a_bad_line_mid_stream_writes_the_documents_before_it_and_its_own_so_far(document_model_dir, corpus_dir,
                                                                                   tmp_path):
    documents = documents_as_text(os.path.join(corpus_dir, "test.txt"))[:2]
    before = "\n".join(documents[0]) + "\n\n" + "\n".join(documents[1][:3]) + "\n"
    after = "\n".join(documents[1][3:]) + "\n"
    done = inference_stream(document_model_dir, before.encode() + b"caf\xe9\n" + after.encode(), "--format", "text",
                            "--json")
    assert done.returncode == 1
    bad_line = before.count("\n") + 1
    assert done.stderr.decode().strip().endswith(f"<stdin>:{bad_line}: expected UTF-8 text, found invalid byte 0xe9 at "
                                                 "byte offset 3 of the line"), done.stderr.decode()
    # What the file mode writes for the input up to the bad line.
    prefix = tmp_path / "prefix.txt"
    prefix.write_text(before, encoding="utf-8")
    assert_same_answers(done.stdout, inference_file(document_model_dir, prefix, tmp_path, "--format", "text", "--json"))


# --- bounded input (issue 29): windows, and input that cannot be read twice --------------------------

@pytest.mark.parametrize("fixture", ["model_dir", "document_model_dir"])
def test_a_file_tagged_in_small_windows_gives_the_same_output(fixture, corpus_dir, tmp_path, request, monkeypatch):
    """Windows of 5 sentences (or 200 characters) tag the file as one window does: contexts reach
    across windows, and -DOCSTART- lines and the scheme stay."""
    from ner.data import limits
    model_dir = request.getfixturevalue(fixture)
    conll = os.path.join(corpus_dir, "test.txt")
    text = tmp_path / "text.txt"
    text.write_text("\n\n".join("\n".join(d) for d in documents_as_text(conll)) + "\n", encoding="utf-8")
    options = {conll: [], str(text): ["--format", "text", "--json"]}
    whole = {path: inference_file(model_dir, path, tmp_path, *args) for path, args in options.items()}
    for sentences, characters in ((5, 1 << 20), (1 << 20, 200)):
        monkeypatch.setattr(limits, "WINDOW_SENTENCES", sentences)
        monkeypatch.setattr(limits, "WINDOW_CHARACTERS", characters)
        for path, args in options.items():
            if args:
                assert_same_answers(inference_file(model_dir, path, tmp_path, *args), whole[path])
            else:
                assert inference_file(model_dir, path, tmp_path, *args) == whole[path]


def test_stdin_into_a_file_is_read_twice_through_a_copy(model_dir, corpus_dir, tmp_path):
    """--input - with --output FILE: checked whole before TensorFlow loads, then tagged from a
    temporary copy, with the gold column's scheme, as the file itself."""
    import subprocess
    import sys

    from conftest import ROOT
    source = os.path.join(corpus_dir, "test.txt")
    iob1 = tmp_path / "iob1.txt"
    iob1.write_text("".join("".join(f"{line.rsplit(' ', 1)[0]} {tag}\n" for line, tag in
                                    zip(s.lines, convert_tags(s.tags, "iob2", "iob1"))) + "\n"
                            for s in read_conll(source) if not s.docstart))
    out = tmp_path / "out.txt"
    with open(iob1, "rb") as stdin:
        done = subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", model_dir,
                               "--input", "-", "--output", str(out)], stdin=stdin, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    assert out.read_bytes() == inference_file(model_dir, iob1, tmp_path)
