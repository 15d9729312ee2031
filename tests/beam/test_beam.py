"""beam_tag.py: a local Beam pipeline over several shards writes exactly what inference.py writes
for each shard; a malformed record is reported with its shard and line and loses nothing else."""
import io
import os

import pytest

import beam_tag
import inference
from ner.beam import pipeline
from ner.data.conll import InputError, parse_conll, read_conll
from ner.serving import loaders


def split_into_shards(source: str, folder, count: int) -> list[str]:
    """The sentences (blank-line blocks) of `source` dealt into `count` files, plus an empty one."""
    blocks = open(source, encoding="utf-8").read().strip("\n").split("\n\n")
    os.makedirs(folder, exist_ok=True)
    paths = []
    for shard in range(count):
        path = os.path.join(folder, f"part-{shard}.txt")
        part = blocks[shard * len(blocks) // count:(shard + 1) * len(blocks) // count]
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n\n".join(part) + "\n")
        paths.append(path)
    empty = os.path.join(folder, "part-empty.txt")
    open(empty, "w").close()
    return paths + [empty]


def expected(model_dir: str, path: str, tmp_path, *options) -> bytes:
    out = str(tmp_path / ("expected-" + os.path.basename(path)))
    inference.main(["--model_dir", model_dir, "--input", path, "--output", out, *options])
    return open(out, "rb").read()


def run_pipeline(model_dir, pattern, output, *options) -> int:
    return beam_tag.main(["--model_dir", model_dir, "--input", pattern, "--output", output, "--batch_size", "16",
                          *options])


@pytest.fixture
def count_loads(monkeypatch):
    loads = []
    load = loaders.load_model

    def counting(folder):
        loads.append(folder)
        return load(folder)

    monkeypatch.setattr(loaders, "load_model", counting)
    return loads


def test_conll_shards_match_inference_py(feature_model_dir, corpus_dir, tmp_path, count_loads):
    shards = split_into_shards(os.path.join(corpus_dir, "test.txt"), tmp_path / "in", 3)
    output = str(tmp_path / "out")
    assert run_pipeline(feature_model_dir, str(tmp_path / "in" / "part-*.txt"), output) == 0
    assert count_loads == [feature_model_dir]  # one worker here: the model is loaded once
    assert sorted(os.listdir(output)) == sorted(os.path.basename(p) for p in shards)
    for path in shards:
        assert open(os.path.join(output, os.path.basename(path)), "rb").read() == expected(
            feature_model_dir, path, tmp_path), path
    assert open(os.path.join(output, "part-0.txt"), "rb").read().count(b"\n") > 100


def test_text_shards_with_json_match_inference_py(frozen_dir, tmp_path):
    lines = ["Angela Merkel flew to Paris on Monday .", "", "John Smith works for Acme Corp in Berlin .",
             "The U.S. dollar fell 1,000 points , didn't it ?", "Maria visited New York ."] * 5
    folder = tmp_path / "text"
    folder.mkdir()
    shards = []
    for shard in range(2):
        path = folder / f"doc{shard}.txt"
        path.write_text("\n".join(lines[shard::2]) + "\n", encoding="utf-8")
        shards.append(str(path))
    output = str(tmp_path / "out")
    assert run_pipeline(frozen_dir, str(folder / "*.txt"), output, "--format", "text", "--json") == 0
    for path in shards:
        assert open(os.path.join(output, os.path.basename(path)), "rb").read() == expected(
            frozen_dir, path, tmp_path, "--format", "text", "--json"), path


def test_malformed_records_are_reported_and_the_others_tagged(feature_model_dir, corpus_dir, tmp_path):
    shards = split_into_shards(os.path.join(corpus_dir, "test.txt"), tmp_path / "in", 2)
    bad = shards[1]
    blocks = open(bad, encoding="utf-8").read().strip("\n").split("\n\n")
    # Sentence 3 loses a column on its second line; sentence 6 has a byte that is not UTF-8.
    third = blocks[3].split("\n")
    third[1] = " ".join(third[1].split()[:-1])
    blocks[3] = "\n".join(third)
    data = "\n\n".join(blocks).encode("utf-8") + b"\n"
    sixth = data.index(blocks[6].encode("utf-8"))
    data = data[:sixth] + b"\xff" + data[sixth:]
    with open(bad, "wb") as f:
        f.write(data)
    line_of = {i: 1 + "\n\n".join(blocks[:i]).count("\n") + 2 for i in range(1, len(blocks))}

    output = str(tmp_path / "out")
    assert run_pipeline(feature_model_dir, str(tmp_path / "in" / "part-*.txt"), output) == 1
    report = open(os.path.join(output, pipeline.MALFORMED), encoding="utf-8").read().splitlines()
    assert report == sorted([f"{bad}:{line_of[3] + 1}: expected 4 columns like line 1, found 3",
                             f"{bad}:{line_of[6]}: expected UTF-8 text, found invalid byte 0xff at byte offset 0 "
                             "of the line"])
    # The good shard as inference.py tags it; the bad one as inference.py tags it without the two sentences.
    good = shards[0]
    assert open(os.path.join(output, "part-0.txt"), "rb").read() == expected(feature_model_dir, good, tmp_path)
    kept = [block for i, block in enumerate(blocks) if i not in (3, 6)]
    clean = tmp_path / "clean" / "part-1.txt"
    clean.parent.mkdir()
    clean.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    assert open(os.path.join(output, "part-1.txt"), "rb").read() == expected(feature_model_dir, str(clean), tmp_path)


def test_conll_records_read_as_parse_conll(corpus_dir):
    data = open(os.path.join(corpus_dir, "dev.txt"), "rb").read()
    records = list(pipeline.conll_records(io.BytesIO(data), "dev.txt"))
    assert [r.sentence for r in records] == parse_conll(data, "dev.txt", tagged=False)
    assert [r.index for r in records] == list(range(len(records)))


def test_missing_feature_column_is_a_malformed_record():
    data = b"Anna NNP B-NP B-PER\nvisits VBZ B-VP O\n\nOslo NNP\nharbour NN\n"
    items = list(pipeline.conll_records(io.BytesIO(data), "x.txt", feature_columns=(1, 2)))
    assert isinstance(items[0], pipeline.Record)
    assert str(items[1]) == "x.txt:4: expected 4 columns like line 1, found 2"
    items = list(pipeline.conll_records(io.BytesIO(b"Oslo NNP\nharbour NN\n"), "y.txt", feature_columns=(1, 2)))
    assert str(items[0]) == "y.txt:1: the model reads column 3 (features [1, 2]); found 2 columns"


def test_input_without_match_and_duplicate_names_are_refused(model_dir, tmp_path):
    with pytest.raises(SystemExit, match="no input file matches"):
        run_pipeline(model_dir, str(tmp_path / "none-*.txt"), str(tmp_path / "out"))
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.txt").write_text("a\n")
    with pytest.raises(SystemExit, match="same name as"):
        run_pipeline(model_dir, str(tmp_path / "*" / "x.txt"), str(tmp_path / "out"))


# --- models that read document context (bert_context=document) --------------------------------

def test_records_carry_the_context_of_their_document_without_malformed_sentences():
    data = b"-DOCSTART- O\n\na O\nb O\n\nc\n\nd O\n\n-DOCSTART- O\n\ne O\n"
    items = list(pipeline.conll_records(io.BytesIO(data), "x.txt", context_words=16))
    assert [str(item) for item in items if isinstance(item, InputError)] == [
        "x.txt:6: expected 2 columns like line 3, found 1"]
    assert [(item.sentence.words, item.context) for item in items if isinstance(item, pipeline.Record)] == [
        (("-DOCSTART-",), ((), ())), (("a", "b"), ((), ("d",))), (("d",), (("a", "b"), ())),
        (("-DOCSTART-",), ((), ())), (("e",), ((), ()))]
    assert all(item.context == ((), ()) for item in pipeline.conll_records(io.BytesIO(data), "x.txt")
               if isinstance(item, pipeline.Record))
    lines = pipeline.text_records(io.BytesIO(b"Anna flew .\n\nBob ran .\n\xff\nEve sat .\n"), "y.txt", context_words=2)
    assert [(item.sentence.words, item.context) for item in lines if isinstance(item, pipeline.Record)] == [
        (("Anna", "flew", "."), ((), ())), (("Bob", "ran", "."), ((), ("Eve", "sat"))),
        (("Eve", "sat", "."), (("ran", "."), ()))]


def test_conll_shards_of_documents_match_inference_py(document_model_dir, corpus_dir, tmp_path):
    shards = split_into_shards(os.path.join(corpus_dir, "test.txt"), tmp_path / "in", 2)
    assert all(open(path, encoding="utf-8").read().count("-DOCSTART-") > 1 for path in shards[:2])
    output = str(tmp_path / "out")
    assert run_pipeline(document_model_dir, str(tmp_path / "in" / "part-*.txt"), output) == 0
    for path in shards:
        assert open(os.path.join(output, os.path.basename(path)), "rb").read() == expected(
            document_model_dir, path, tmp_path, "--batch_size", "16"), path


def test_text_shards_of_documents_match_inference_py(document_model_dir, corpus_dir, tmp_path):
    """Blank lines end documents in text shards too; the same batches give the same confidences,
    which differ where each line is read alone."""
    import json
    documents = []
    for sentence in read_conll(os.path.join(corpus_dir, "test.txt")):
        if sentence.docstart:
            documents.append([])
        elif documents:
            documents[-1].append(" ".join(sentence.words))
    folder = tmp_path / "text"
    folder.mkdir()
    shards = []
    for shard in range(2):
        path = folder / f"doc{shard}.txt"
        path.write_text("\n\n".join("\n".join(document) for document in documents[shard::2]) + "\n", encoding="utf-8")
        shards.append(str(path))
    output = str(tmp_path / "out")
    assert run_pipeline(document_model_dir, str(folder / "*.txt"), output, "--format", "text", "--json") == 0
    for path in shards:
        tagged = open(os.path.join(output, os.path.basename(path)), "rb").read()
        assert tagged == expected(document_model_dir, path, tmp_path, "--format", "text", "--json", "--batch_size", "16")
        alone = tmp_path / "alone" / os.path.basename(path)
        alone.parent.mkdir(exist_ok=True)
        alone.write_text(open(path, encoding="utf-8").read().replace("\n", "\n\n"), encoding="utf-8")
        each_alone = expected(document_model_dir, str(alone), tmp_path, "--format", "text", "--json", "--batch_size", "16")
        differ = sum(json.loads(a)["confidences"] != pytest.approx(json.loads(b)["confidences"], abs=2e-4)
                     for a, b in zip(tagged.splitlines(), each_alone.splitlines()))
        assert differ > len(tagged.splitlines()) // 4, (path, differ)


def test_records_over_the_limits_or_in_another_format_are_malformed_and_the_rest_read():
    """Beam's readers bound lines and sentences as inference.py does, and refuse lines of another
    format with the same words, each as a malformed record; the reading goes on."""
    from ner.data.limits import Limits
    data = b"a O\n" + b"x" * 100 + b" O\nb O\n\nc O\nd O\ne O\n\nf O\n"
    items = list(pipeline.conll_records(io.BytesIO(data), "s.txt", limits=Limits(line_bytes=50, sentence_tokens=2)))
    assert [str(item) for item in items if isinstance(item, InputError)] == [
        "s.txt:2: expected a line of at most 50 bytes (--max_line_bytes raises it)",
        "s.txt:7: expected a sentence of at most 2 tokens (--max_sentence_tokens raises it)"]
    assert [item.sentence.words for item in items if isinstance(item, pipeline.Record)] == [("f",)]
    (prose,) = pipeline.conll_records(io.BytesIO(b"Prose of many words .\n"), "p.txt")
    assert str(prose) == ("p.txt:1: expected a tag ('O' or B-/I-/E-/S- and a type) in the last of 5 columns, the gold "
                          "column after the 1 the model reads, found '.'; raw text? use --format text")
    text = b"-DOCSTART- O\n\nAnna flew .\n" + b"y " * 40 + b"\n\nVelmar B-ORG\nsigns O\n\nBob ran home .\n"
    items = list(pipeline.text_records(io.BytesIO(text), "t.txt", limits=Limits(line_bytes=60, sentence_tokens=3)))
    assert [str(item) for item in items if isinstance(item, InputError)] == [
        "t.txt:1: found a CoNLL -DOCSTART- line in raw text; tag CoNLL with --format conll",
        "t.txt:4: expected a line of at most 60 bytes (--max_line_bytes raises it)",
        "t.txt:6: found CoNLL token lines (columns ending in a tag) in raw text; tag CoNLL with --format conll",
        "t.txt:9: expected a sentence of at most 3 tokens (--max_sentence_tokens raises it)"]
    assert [item.sentence.words for item in items if isinstance(item, pipeline.Record)] == [("Anna", "flew", ".")]


def test_the_summary_counts_in_words(frozen_dir, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Anna lives in Lisbon\n")
    (folder / "b.txt").write_text("Maria visited New York\nJohn Smith works in Berlin\n")
    assert run_pipeline(frozen_dir, str(folder / "a.txt"), str(tmp_path / "one"), "--format", "text") == 0
    assert f"1 shard, 1 sentence tagged into {tmp_path / 'one'}\n" in capsys.readouterr().err
    assert run_pipeline(frozen_dir, str(folder / "*.txt"), str(tmp_path / "both"), "--format", "text") == 0
    assert f"2 shards, 3 sentences tagged into {tmp_path / 'both'}\n" in capsys.readouterr().err
