"""inference/cc: the CMake build, the tagger command against inference.py, the C API through
ctypes, raw text tokenized by the folder's tokenizer graph as the checkpoint tokenizes it,
malformed input that must end in a clean error, never a crash, the serving.json files that the
Python loader refuses (test_loaders.py), refused with the same messages, and models that read
document context, tagged document by document as inference.py and the loaders tag them.

Run as a script (python tests/test_cc.py LIBRARY FROZEN_DIR SEED) it is the fuzzing client of
the C API, in a process of its own so that a crash shows as a signal instead of killing pytest.
"""
import json
import os
import random
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)  # also when run as the fuzzing script

# The bad manifests the Python loader refuses: test_loaders.py sits beside this file, whose folder
# is on sys.path under pytest and when run as a script.
from test_loaders import BAD_JSON, BAD_MANIFESTS, SCORES_OF_OPEN_WIDTH, damaged_copy  # noqa: E402

from ner.serving.native import CTagger, TaggerError  # noqa: E402

MAX_LINE_BYTES = 1 << 16  # main.cc's kMaxLineBytes
C_API_CALLS = 3000
STREAMS = 12
LINES_PER_STREAM = 400


def run(command, **kwargs):
    done = subprocess.run(command, capture_output=True, **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{command} failed:\n{done.stdout.decode(errors='replace')}\n{done.stderr.decode(errors='replace')}")
    return done


@pytest.fixture(scope="session")
def cc_build(tmp_path_factory):
    """A fresh CMake build of inference/cc for this session."""
    if shutil.which("cmake") is None or shutil.which(os.environ.get("CXX", "c++")) is None:
        pytest.skip("cmake and a C++ compiler are needed for inference/cc")
    build = str(tmp_path_factory.mktemp("cc_build"))
    run(["cmake", "-S", os.path.join(ROOT, "inference", "cc"), "-B", build, f"-DPython3_EXECUTABLE={sys.executable}"])
    run(["cmake", "--build", build, "-j", "2"])
    return build


def tagger(cc_build, frozen, stdin: bytes, *args):
    return subprocess.run([os.path.join(cc_build, "tagger"), frozen, *args], input=stdin, capture_output=True)


@pytest.mark.parametrize("model_fixture, frozen_fixture", [("model_dir", "frozen_dir"),
                                                           ("feature_model_dir", "frozen_feature_dir")])
def test_tagger_writes_what_inference_py_writes_from_frozen_and_export(model_fixture, frozen_fixture, cc_build, corpus_dir,
                                                                       tmp_path, request):
    import export
    import inference
    source = os.path.join(corpus_dir, "test.txt")
    expected = tmp_path / "pred.txt"
    inference.main(["--model_dir", request.getfixturevalue(model_fixture), "--input", source,
                    "--output", str(expected), "--scheme", "iob2"])
    export_dir = str(tmp_path / "export")
    export.main(["--model_dir", request.getfixturevalue(model_fixture), "--out", export_dir])
    for folder in (request.getfixturevalue(frozen_fixture), export_dir):  # the C API loads either
        done = tagger(cc_build, folder, open(source, "rb").read(), "--threads", "1")
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode() == expected.read_text(encoding="utf-8")
        assert b"median" in done.stderr and b"loaded in" in done.stderr


@pytest.mark.parametrize("frozen_fixture", ["frozen_dir", "frozen_feature_dir"])
def test_inference_runs_frozen_folders_on_the_library_when_there_is_one(frozen_fixture, cc_build, corpus_dir, tmp_path,
                                                                        request, monkeypatch):
    import inference
    from ner.serving import loaders, native
    from ner.serving.loaders import load_model
    frozen = request.getfixturevalue(frozen_fixture)
    outputs = []
    for library, loader in (("", loaders.FrozenTagger), (os.path.join(cc_build, "libtagger.so"), loaders.NativeFrozenTagger)):
        monkeypatch.setenv(native.NATIVE_LIBRARY_ENV, library)
        assert type(load_model(frozen)) is loader
        out = tmp_path / f"{loader.__name__}.txt"
        inference.main(["--model_dir", frozen, "--input", os.path.join(corpus_dir, "test.txt"), "--output", str(out)])
        outputs.append(out.read_text(encoding="utf-8"))
    assert outputs[0] == outputs[1] and outputs[0].count("\n") > 100
    monkeypatch.setenv(native.NATIVE_LIBRARY_ENV, str(tmp_path / "no-such-library.so"))
    with pytest.raises(ValueError, match="no-such-library.so"):
        load_model(frozen)


def assert_c_api_tags_like_the_python_loader(cc_build, frozen, corpus_dir):
    from ner.data.conll import read_conll
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import load_model
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart][:40]
    expected = tag_sentences(load_model(frozen), sentences, "iob2", batch_size=8)
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), frozen)
    assert c_tagger.num_feature_columns == 0
    tagged = []
    for start in range(0, len(sentences), 7):  # batches of unequal lengths: padding inside the C API
        tagged += c_tagger.tag([s.words for s in sentences[start:start + 7]])
    assert [tags for tags, _ in tagged] == [tags for tags, _ in expected]
    for (_, confidences), (_, reference) in zip(tagged, expected):
        assert confidences == pytest.approx(list(reference), abs=1e-5)
    return c_tagger


@pytest.mark.parametrize("overrides, native_head", [([], "crf"), (["--set", "use_crf=false"], "softmax"),
                                                    (["--set", 'tag_scheme="iob1"'], None)])
def test_native_head_decodes_as_the_graph_does(overrides, native_head, cc_build, corpus_dir, emb_dir, tmp_path):
    """The C API decodes a CRF or softmax head natively from the emission scores (serving.json's
    "head") and an IOB1 model through the graph: each must match the Python frozen loader."""
    import json

    import freeze
    from conftest import train_tiny
    model = train_tiny(corpus_dir, emb_dir, str(tmp_path / "model"), "--epochs", "1", *overrides)
    frozen = str(tmp_path / "frozen")
    freeze.main(["--model_dir", model, "--out", frozen])
    with open(os.path.join(frozen, "serving.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest.get("head", {}).get("type") == native_head
    assert_c_api_tags_like_the_python_loader(cc_build, frozen, corpus_dir)


def test_c_api_rejects_bad_calls(cc_build, frozen_dir, corpus_dir):
    c_tagger = assert_c_api_tags_like_the_python_loader(cc_build, frozen_dir, corpus_dir)
    for bad, message in (([[]], "sentence 0 is empty"), ([["a", ""]], "token 1 of sentence 0 is empty"),
                         ([[b"caf\xe9"]], "not UTF-8"), ([], "no sentences")):
        with pytest.raises(TaggerError, match=message):
            c_tagger.tag(bad)
    with pytest.raises(TaggerError, match="serving.json"):
        CTagger(os.path.join(cc_build, "libtagger.so"), os.path.join(frozen_dir, "missing"))


def test_c_api_with_feature_columns(cc_build, frozen_feature_dir):
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), frozen_feature_dir)
    assert c_tagger.num_feature_columns == 2
    tags, confidences = c_tagger.tag([["Paris", "is", "nice"]], [[["NNP", "B-NP"], ["VBZ", "B-VP"], ["JJ", "B-ADJP"]]])[0]
    assert len(tags) == len(confidences) == 3
    with pytest.raises(TaggerError, match="features is NULL"):
        c_tagger.tag([["Paris"]])


def test_tagger_turns_onednn_off_unless_the_caller_chose(cc_build, frozen_dir):
    """TensorFlow logs as it loads when its oneDNN kernels are on; the runner sets
    TF_ENABLE_ONEDNN_OPTS=0 before it loads libtagger (and so TensorFlow) unless the caller chose."""
    base = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    base["TF_CPP_MIN_LOG_LEVEL"] = "0"
    logs = {}
    for choice in (None, "1"):
        env = dict(base, **({"TF_ENABLE_ONEDNN_OPTS": choice} if choice else {}))
        done = subprocess.run([os.path.join(cc_build, "tagger"), frozen_dir, "--format", "text"], input=b"Hello world\n",
                              capture_output=True, env=env)
        assert done.returncode == 0, done.stderr.decode()
        logs[choice] = done.stderr.decode()
    assert "oneDNN custom operations are on" in logs["1"]
    assert "oneDNN custom operations are on" not in logs[None] and "loaded in" in logs[None]


# Raw texts, one per line, that the tokenizer must cut and offset exactly as the checkpoint does:
# clitics, abbreviations, numbers, combining marks (NFD), emoji sequences, flags, keycaps,
# zero-width and other invisible characters, JSON's escapes, blank and token-less lines. The first
# starts with a BOM, which raw text keeps as an invisible character, as inference.py does.
TRICKY_TEXTS = [
    "\ufeffAngela Merkel didn't fly to Paris, she'll go to Berlin.",
    "",
    "The U.S. and e.g. Mr. Smith paid $3.5 million (1,000 euros) at 12:30 ... -- well-known O'Neill's",
    "   \t ",
    "Zu\u0308rich and Z\u00fcrich, \u0928\u092e\u0938\u094d\u0924\u0947 \u1100\u1161\u11a8 caf\u00e9",
    "Family \U0001F468\u200D\U0001F469\u200D\U0001F467 flags \U0001F1E9\U0001F1EA\U0001F1EB\U0001F1F7"
    " keycap 1\ufe0f\u20e3 smile\U0001F600",
    "zero\u200bwidth\u2060joiner \u200e\u200fbidi \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 ZWNJ",
    "\u200b\u2060\ufeff",
    'quotes "Bonn" \\ back\\slash \x01control\x1b \x7fdel\ttab',
    "John's JOHN'S can't I'm we're you've they'd",
    "Angela Merkel",
]


def checkpoint_tags(model_dir, texts):
    """The checkpoint's tokenization of each text and its (tags, confidences) for those with a token."""
    from ner.data.conll import Sentence
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import load_checkpoint
    model = load_checkpoint(model_dir)
    rows = model.tokenize(texts)
    sentences = [Sentence(lines=tuple(w for w, _, _ in row), columns=tuple((w,) for w, _, _ in row), first_line=i + 1)
                 for i, row in enumerate(rows) if row]
    tagged = iter(tag_sentences(model, sentences, "iob2", batch_size=8))
    return rows, [next(tagged) if row else None for row in rows]


def test_raw_text_is_tokenized_and_tagged_as_the_checkpoint_does(cc_build, model_dir, frozen_dir, export_dir):
    """--format text and --json on a frozen and an export folder: the checkpoint's tokens, offsets
    and tags, its confidences to the 4 decimals written, entities as ner.data.render.describe
    gives them; and every JSON line byte for byte what describe and json.dumps write."""
    from ner.data.render import describe
    rows, tagged = checkpoint_tags(model_dir, TRICKY_TEXTS)
    assert [len(row) for row in rows].count(0) == 3  # the empty, blank and invisible lines
    stdin = "".join(text + "\n" for text in TRICKY_TEXTS).encode()
    expected_text = "".join("".join(f"{w} {t}\n" for (w, _, _), t in zip(row, result[0])) + "\n"
                            for row, result in zip(rows, tagged) if row)
    for folder in (frozen_dir, export_dir):
        done = tagger(cc_build, folder, stdin, "--format", "text")
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode() == expected_text
        done = tagger(cc_build, folder, stdin, "--format", "text", "--json")
        assert done.returncode == 0, done.stderr.decode()
        lines = done.stdout.decode().splitlines()
        assert len(lines) == len(rows) - 3
        c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), folder)
        for line, text, row, (tags, confidences) in zip(lines, [t for t, r in zip(TRICKY_TEXTS, rows) if r],
                                                         [r for r in rows if r], [t for t in tagged if t]):
            got = json.loads(line)
            want = describe([w for w, _, _ in row], tags, confidences, "iob2", text, [(s, e) for _, s, e in row])
            assert got["confidences"] == pytest.approx(want["confidences"], abs=2e-4)
            for entity in got["entities"] + want["entities"]:
                entity["confidence"] = round(entity["confidence"], 2)
            assert {**got, "confidences": None} == {**want, "confidences": None}
            # The same text through the C API, one at a time as the runner tags it: the line is what
            # Python writes of the same numbers.
            (c_row, c_tags, c_confidences), = c_tagger.tag_text([text])
            assert c_row == row and c_tags == tags
            same = describe([w for w, _, _ in c_row], c_tags, c_confidences, "iob2", text, [(s, e) for _, s, e in c_row])
            assert line == json.dumps(same, ensure_ascii=False)


def test_inference_py_and_the_runner_write_the_same_text_and_json(cc_build, frozen_dir, tmp_path, monkeypatch):
    """inference.py on the library (NativeFrozenTagger) against the runner, byte for byte."""
    import inference
    from ner.serving import native
    monkeypatch.setenv(native.NATIVE_LIBRARY_ENV, os.path.join(cc_build, "libtagger.so"))
    source = tmp_path / "in.txt"
    # Lines end at "\n" alone, with or without a "\r" before it; a lone "\r" is inside its line.
    source.write_bytes("".join(text + "\n" for text in TRICKY_TEXTS).encode() + b"Anna\rflew home\r\nBob ran .\r\n")
    for args in ([], ["--json"]):
        out = tmp_path / "out.txt"
        inference.main(["--model_dir", frozen_dir, "--format", "text", "--input", str(source), "--output", str(out), *args])
        done = tagger(cc_build, frozen_dir, source.read_bytes(), "--format", "text", *args)
        assert done.returncode == 0, done.stderr.decode()
        python_lines, runner_lines = out.read_text(encoding="utf-8").splitlines(), done.stdout.decode().splitlines()
        assert len(python_lines) == len(runner_lines)
        for python_line, runner_line in zip(python_lines, runner_lines):
            if args:  # batches of other sizes may move a confidence in its last bit
                python_line, runner_line = json.loads(python_line), json.loads(runner_line)
                assert python_line["confidences"] == pytest.approx(runner_line["confidences"], abs=2e-4)
                python_line["confidences"] = runner_line["confidences"] = None
                for entity in python_line["entities"] + runner_line["entities"]:
                    entity["confidence"] = round(entity["confidence"], 2)
            assert python_line == runner_line


def test_native_tokenize_is_the_checkpoints(cc_build, model_dir, frozen_dir):
    from ner.serving.loaders import NativeFrozenTagger, load_checkpoint
    # NUL reaches the C API as U+0001 (native.C_API_NUL), which the tokenizer reads alike.
    texts = [*TRICKY_TEXTS, "line\nbreaks\r\nand\u2028separators", "x" * 3000, "a " * 2000, "a\0b", "a\0\u0301b\0"]
    expected = load_checkpoint(model_dir).tokenize(texts)
    assert NativeFrozenTagger(frozen_dir, os.path.join(cc_build, "libtagger.so")).tokenize(texts) == expected
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), frozen_dir)
    assert c_tagger.has_tokenizer
    assert c_tagger.tokenize([]) == [] and c_tagger.tag_text([]) == []
    assert c_tagger.tag_text(["", "\u200b"]) == [([], [], []), ([], [], [])]
    for bad, message in (([b"ok", b"caf\xe9"], "text 1 is not UTF-8"),):
        for call in (c_tagger.tokenize, c_tagger.tag_text):
            with pytest.raises(TaggerError, match=message):
                call(bad)


def test_a_folder_without_a_tokenizer_says_to_write_it_again(cc_build, frozen_dir, tmp_path):
    """Folders written before raw text was tokenized inside the graph still tag CoNLL and tokens."""
    from test_loaders import edit_manifest

    from ner.serving.loaders import FrozenTagger, NativeFrozenTagger, no_tokenizer
    # The graph keeps the tokenizer's ops, so "op_libraries" stays.
    folder, named = damaged_copy(frozen_dir, tmp_path, edit_manifest(lambda m: m.pop("tokenizer")))
    message = str(no_tokenizer(named))
    for loader in (FrozenTagger(folder), NativeFrozenTagger(folder, os.path.join(cc_build, "libtagger.so"))):
        with pytest.raises(ValueError) as error:
            loader.tokenize(["Hello world"])
        assert str(error.value) == message
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), folder)
    assert not c_tagger.has_tokenizer and c_tagger.tag([["Hello", "world"]])
    with pytest.raises(TaggerError) as error:
        c_tagger.tag_text(["Hello world"])
    assert str(error.value) == message
    done = tagger(cc_build, folder, b"\nHello world\n", "--format", "text")
    assert done.returncode == 1 and done.stdout == b""
    assert f"tagger: <stdin>:2: {message}\n" in done.stderr.decode(), done.stderr.decode()  # the first line of text
    done = tagger(cc_build, folder, b"Hello NN O\n")
    assert done.returncode == 0 and done.stdout.startswith(b"Hello NN O ") and done.stdout.endswith(b"\n\n")


def test_a_missing_op_library_is_one_clear_error(cc_build, frozen_dir, export_dir, tmp_path, monkeypatch):
    empty = tmp_path / "no-ops"
    empty.mkdir()
    env = dict(os.environ, NER_TF_OPS_DIR=str(empty))
    for folder in (frozen_dir, export_dir):
        done = subprocess.run([os.path.join(cc_build, "tagger"), folder, "--format", "text"], input=b"Hello world\n",
                              capture_output=True, env=env)
        assert done.returncode == 1 and done.stdout == b""
        lines = done.stderr.decode().splitlines()
        assert len(lines) == 1, lines
        assert lines[0] == (f'tagger: op library _regex_split_ops.so (serving.json "op_libraries") not found in {empty} '
                            "(NER_TF_OPS_DIR): install tensorflow-text (pip install --no-deps -r requirements-no-deps.txt) "
                            "or set NER_TF_OPS_DIR to the folder that holds _regex_split_ops.so (tensorflow_text/python/ops)")
    from ner.serving.loaders import NativeFrozenTagger
    monkeypatch.setenv("NER_TF_OPS_DIR", str(empty))
    with pytest.raises(ValueError, match=f"cannot run it: op library _regex_split_ops.so .* not found in {empty} "):
        NativeFrozenTagger(frozen_dir, os.path.join(cc_build, "libtagger.so"))
    # A library serving.json names that the folder lacks.
    folder, _ = damaged_copy(frozen_dir, tmp_path, edit_manifest_libraries(["_no_such_ops.so"]))
    monkeypatch.delenv("NER_TF_OPS_DIR")
    with pytest.raises(TaggerError, match=r"op library _no_such_ops.so \(serving.json \"op_libraries\"\) not found in /"):
        CTagger(os.path.join(cc_build, "libtagger.so"), folder)


def edit_manifest_libraries(names):
    from test_loaders import edit_manifest
    return edit_manifest(lambda m: m.update(op_libraries=names))


def test_raw_text_for_a_feature_model_is_refused(cc_build, frozen_feature_dir):
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), frozen_feature_dir)
    with pytest.raises(TaggerError) as error:
        c_tagger.tag_text(["Hello world"])
    assert str(error.value) == f"{frozen_feature_dir} was trained with CoNLL feature columns [1, 2]; tag CoNLL input instead"
    assert c_tagger.tokenize(["Hello world"]) == [[("Hello", 0, 5), ("world", 6, 11)]]


@pytest.mark.parametrize("stdin, args, message", [
    (b"a NN O\nb\xff NN O\n", [], b"<stdin>:2: expected UTF-8 text, found invalid byte 0xff"),
    (b"a NN O\n" + b"b" * (MAX_LINE_BYTES + 1) + b"\n", [], b"<stdin>:2: expected a line of at most"),
    (b"a NN O\nb NN\n", [], b"<stdin>:2: expected 3 columns like line 1, found 2"),
    (b"a\tNN\t\tO\n", [], b"<stdin>:1: expected non-empty columns"),
    (b"a\x00b NN O\n", [], b"<stdin>:1: expected text, found a NUL byte"),
    (b"a NN O\n", ["--format", "xml"], b"--format expects conll or text"),
    (b"a NN O\n", ["--threads", "many"], b"--threads expects a number"),
    (b"a NN O\n", ["--format", "conll", "--json"], b"--json writes tagged raw text"),
    (b"ok\nb\xff\n", ["--format", "text", "--json"], b"<stdin>:2: expected UTF-8 text, found invalid byte 0xff"),
    (b"ok\n-DOCSTART- O\n", ["--format", "text"], b"<stdin>:2: found a CoNLL -DOCSTART- line in raw text"),
    (b"! " * 10001 + b"\n", ["--format", "text"], b"<stdin>:1: expected a sentence of at most 10000 tokens"),
])
def test_bad_input_is_a_clean_error(cc_build, frozen_dir, stdin, args, message):
    done = tagger(cc_build, frozen_dir, stdin, *args)
    assert done.returncode in (1, 2)
    assert message in done.stderr


def test_missing_model_and_text_for_a_feature_model_are_clean_errors(cc_build, frozen_feature_dir, tmp_path):
    done = tagger(cc_build, str(tmp_path / "missing"), b"a\n")
    assert done.returncode == 1 and b"cannot read" in done.stderr
    done = tagger(cc_build, frozen_feature_dir, b"a b c\n", "--format", "text")
    assert done.returncode == 1 and b"tag CoNLL input" in done.stderr
    done = tagger(cc_build, frozen_feature_dir, b"a NN\n")
    assert done.returncode == 1 and b"the model reads column 3" in done.stderr


@pytest.mark.parametrize("damage", [*BAD_MANIFESTS.values(), *BAD_JSON.values()], ids=[*BAD_MANIFESTS, *BAD_JSON])
def test_c_api_refuses_the_manifests_the_python_loader_refuses(damage, cc_build, frozen_dir, tmp_path):
    """With the Python loader's very message, but for JSON that nlohmann/json refuses as it parses,
    in its own words; either way naming the file."""
    from ner.serving.loaders import load_model
    folder, named = damaged_copy(frozen_dir, tmp_path, damage)
    with pytest.raises((FileNotFoundError, ValueError)) as python_error:
        load_model(folder)
    with pytest.raises(TaggerError) as c_error:
        CTagger(os.path.join(cc_build, "libtagger.so"), folder)
    if damage in BAD_JSON.values():
        assert str(c_error.value).startswith(f"{named}: "), str(c_error.value)
    else:
        assert str(c_error.value) == str(python_error.value)


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
    import export
    out = str(tmp_path_factory.mktemp("export") / "tiny")
    export.main(["--model_dir", model_dir, "--out", out])
    return out


@pytest.mark.parametrize("case", ["serving.json a link out", "words no tensor name", "lengths a string tensor",
                                  "features without feature_columns", "nested 65 deep", "a NUL character",
                                  "op_libraries a path", "tokenizer without ends", "tokenizer text not in the graph",
                                  "tokenizer starts a string tensor"])
def test_c_api_checks_the_manifest_of_an_export_folder_alike(case, cc_build, export_dir, tmp_path):
    """The C API reads an export folder's serving.json too (the Python loader reads the SavedModel's signature)."""
    folder, named = damaged_copy(export_dir, tmp_path, BAD_MANIFESTS[case])
    with pytest.raises(TaggerError) as error:
        CTagger(os.path.join(cc_build, "libtagger.so"), folder)
    assert str(error.value).startswith(f"{named}: expected "), str(error.value)


def test_tagger_refuses_a_graph_outside_the_folder(cc_build, frozen_dir, tmp_path):
    from ner.serving.loaders import load_model
    folder, _ = damaged_copy(frozen_dir, tmp_path, BAD_MANIFESTS["graph outside through .."])
    with pytest.raises(ValueError) as python_error:
        load_model(folder)
    done = tagger(cc_build, folder, b"Hello world\n", "--format", "text")
    assert done.returncode == 1 and done.stdout == b""
    assert f"tagger: {python_error.value}\n" in done.stderr.decode(), done.stderr.decode()


# Issue 29 case 18 and the integrity manifest: the runner and inference.py refuse with the very same
# line, and the C API with the Python loader's message.

def test_runner_and_inference_py_refuse_deep_or_long_json_with_one_line(cc_build, frozen_dir, tmp_path):
    """serving.json 5,000 deep or with a 5,001-digit number: Python's json recursed (RecursionError)
    where nlohmann/json said "nested at most 64 levels deep"; now one rule on the raw text."""
    import test_commands
    expected = {"nested 5,000 deep": "expected JSON nested at most 64 levels deep",
                "a 5,001-digit number": "expected numbers of at most 100 characters, found one of 5001"}
    for case, message in expected.items():
        folder, named = damaged_copy(frozen_dir, tmp_path / case.replace(" ", "_"), BAD_MANIFESTS[case])
        python = test_commands.run("inference.py", "--model_dir", folder, "--format", "text", "--input", "-",
                                   stdin=b"Hello world\n")
        test_commands.assert_user_error(python, f"{named}: {message}")
        runner = tagger(cc_build, folder, b"Hello world\n", "--format", "text")
        assert runner.returncode == 1 and runner.stdout == b""
        assert f"tagger: {named}: {message}\n" in runner.stderr.decode(), runner.stderr.decode()


def test_brackets_and_digits_inside_strings_are_no_nesting_or_numbers(cc_build, frozen_dir, tmp_path):
    """The bounds count what a parser nests and reads as numbers, never what a string holds."""
    from test_loaders import with_member

    from ner.serving.loaders import load_model
    folder, _ = damaged_copy(frozen_dir, tmp_path, with_member('"\\"' + "[{" * 100 + "9" * 200 + '\\\\"'))
    load_model(folder)
    CTagger(os.path.join(cc_build, "libtagger.so"), folder).close()


def flip_byte(name):
    def damage(folder):
        path = os.path.join(folder, name)
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 1
        open(path, "wb").write(bytes(data))
    return damage


def write_integrity(text):
    def damage(folder):
        with open(os.path.join(folder, "integrity.json"), "w", encoding="utf-8") as f:
            f.write(text)
    return damage


def edit_integrity(change):
    def damage(folder):
        path = os.path.join(folder, "integrity.json")
        manifest = json.load(open(path, encoding="utf-8"))
        change(manifest)
        write_integrity(json.dumps(manifest))(folder)
    return damage


DIGEST = "0" * 64
# Damages done to a folder after it was written: each runtime names the file with the same message.
CHANGED_FILES = {
    "graph.pb a byte flipped": flip_byte("graph.pb"),
    "graph.pb longer": lambda folder: open(os.path.join(folder, "graph.pb"), "ab").write(b"x"),
    "config.json missing": lambda folder: os.remove(os.path.join(folder, "config.json")),
    "serving.json a folder": lambda folder: (os.remove(os.path.join(folder, "serving.json")),
                                             os.mkdir(os.path.join(folder, "serving.json"))),
    "integrity.json not JSON": write_integrity("{"),
    "integrity.json empty": write_integrity(""),
    "integrity.json 5,000 deep": write_integrity("[" * 5000),
    "integrity.json by another writer": edit_integrity(lambda m: m.update(written_by="me")),
    "integrity.json names ..": edit_integrity(lambda m: m["files"].update({"../graph.pb": m["files"]["graph.pb"]})),
    "integrity.json an absolute name": edit_integrity(lambda m: m["files"].update({"/etc/hostname": m["files"]["graph.pb"]})),
    "integrity.json a digest in capitals": edit_integrity(lambda m: m["files"]["graph.pb"].update(sha256="A" * 64)),
    "integrity.json a size of -0": write_integrity('{"written_by": "freeze.py", "files": {"graph.pb": {"size": -0, "sha256": "'
                                                   + DIGEST + '"}}}'),
    "integrity.json a negative size": edit_integrity(lambda m: m["files"]["graph.pb"].update(size=-1)),
    "integrity.json a size of 2**63": edit_integrity(lambda m: m["files"]["graph.pb"].update(size=2**63)),
    "integrity.json a size 2.0": edit_integrity(lambda m: m["files"]["graph.pb"].update(size=2.0)),
    "integrity.json lists a missing file": edit_integrity(lambda m: m["files"].update({"sub/none": m["files"]["graph.pb"]})),
    "integrity.json a 5,001-digit size": write_integrity('{"written_by": "freeze.py", "files": {"graph.pb": {"size": '
                                                         + "9" * 5001 + ', "sha256": "' + DIGEST + '"}}}'),
}


@pytest.mark.parametrize("damage", CHANGED_FILES.values(), ids=CHANGED_FILES)
def test_c_api_names_a_changed_file_as_the_python_loader_does(damage, cc_build, frozen_dir, tmp_path):
    from ner.serving.loaders import load_model
    folder = str(tmp_path / "frozen")
    shutil.copytree(frozen_dir, folder)
    damage(folder)
    with pytest.raises(ValueError) as python_error:
        load_model(folder)
    assert str(python_error.value).startswith(folder + "/"), str(python_error.value)
    with pytest.raises(TaggerError) as c_error:
        CTagger(os.path.join(cc_build, "libtagger.so"), folder)
    assert str(c_error.value) == str(python_error.value)


def test_runner_names_a_changed_file_of_an_export_as_inference_py_does(cc_build, export_dir, tmp_path):
    import test_commands
    folder = str(tmp_path / "export")
    shutil.copytree(export_dir, folder)
    flip_byte("variables/variables.data-00000-of-00001")(folder)
    expected = (f"{folder}/variables/variables.data-00000-of-00001: its SHA-256 is not the one {folder}/integrity.json "
                "lists: the file changed since export.py wrote it; restore it, or write the folder again with export.py")
    test_commands.assert_user_error(test_commands.run("inference.py", "--model_dir", folder, "--format", "text",
                                                      "--input", "-", stdin=b"Hello world\n"), expected)
    runner = tagger(cc_build, folder, b"Hello world\n", "--format", "text")
    assert runner.returncode == 1 and f"tagger: {expected}\n" in runner.stderr.decode(), runner.stderr.decode()


@pytest.mark.parametrize("folder_fixture, writer", [("frozen_dir", "freeze.py"), ("export_dir", "export.py")])
def test_a_folder_without_integrity_json_warns_alike_in_every_runtime(folder_fixture, writer, cc_build, tmp_path,
                                                                      request, capfd, monkeypatch):
    """One line, the same from the runner, the C API under the Python loader (not twice) and the
    Python loaders; the folder still loads."""
    from ner import integrity
    from ner.serving import native
    from ner.serving.loaders import load_model
    folder = str(tmp_path / "folder")
    shutil.copytree(request.getfixturevalue(folder_fixture), folder)
    os.remove(os.path.join(folder, "integrity.json"))
    warning = integrity.unchecked_warning(folder, writer)
    runner = tagger(cc_build, folder, b"Hello world\n", "--format", "text")
    assert runner.returncode == 0 and runner.stderr.decode().splitlines()[0] == warning, runner.stderr.decode()
    capfd.readouterr()
    load_model(folder)
    assert capfd.readouterr().err.splitlines() == [warning]
    if folder_fixture == "frozen_dir":
        monkeypatch.setenv(native.NATIVE_LIBRARY_ENV, os.path.join(cc_build, "libtagger.so"))
        assert type(load_model(folder)).__name__ == "NativeFrozenTagger"
        assert capfd.readouterr().err.splitlines() == [warning]


def test_tagger_refuses_scores_that_do_not_fit_the_head_when_tagging(cc_build, frozen_dir, tmp_path):
    """Where the graph's static shape leaves the width of the emission scores open, each batch is
    checked, as by the Python loader."""
    import numpy as np

    from ner.serving.loaders import load_model
    folder, _ = damaged_copy(frozen_dir, tmp_path, SCORES_OF_OPEN_WIDTH)
    with pytest.raises(ValueError) as python_error:
        load_model(folder).predict(np.array([[b"Hello", b"world"]], dtype=object), np.array([2], np.int32), None)
    done = tagger(cc_build, folder, b"Hello world\n", "--format", "text")
    assert done.returncode == 1
    assert f"tagger: <stdin>:1: {python_error.value}\n" in done.stderr.decode(), done.stderr.decode()


def random_text(rng: random.Random, max_length: int) -> str:
    """Letters, digits, punctuation, control characters, combining marks, CJK, emoji."""
    alphabet = "aZ09.,-'\"$%&()\u00e9\u00df\u0301\u4e2d\u6587\U0001f600\u200b\u00a0\x01\x7f\x1b"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, max_length)))


def malformed_line(rng: random.Random, refuse_rate: float) -> bytes:
    """Lines the tagger must tag whatever they hold, and at refuse_rate one it must refuse."""
    if rng.random() < refuse_rate:
        return rng.choice([bytes(rng.randrange(256) for _ in range(rng.randint(1, 40))),  # random bytes
                           b"w" * rng.randint(MAX_LINE_BYTES - 2, MAX_LINE_BYTES + 2),  # around the line limit
                           b"a b", b"a\tb\t\tc", b"\xed\xa0\x80 x y", b"\xf4\x90\x80\x80 x y", b"\xc0\xaf x y"])
    kind = rng.random()
    if kind < 0.6:
        return " ".join(random_text(rng, 12) .replace(" ", "") for _ in range(3)).encode()
    if kind < 0.75:
        return b""
    if kind < 0.8:
        return b"-DOCSTART- -X- -X-"
    if kind < 0.9:
        return b" \t\r\x0b\x0c "  # whitespace only: a sentence break
    return rng.choice([b"x", b"-DOCSTART-"]) + b" " + random_text(rng, 3).encode() + b" " + b"O"


def test_malformed_streams_never_crash_the_tagger(cc_build, frozen_dir, frozen_feature_dir):
    rng = random.Random(5)
    exits = []
    for stream in range(STREAMS):
        refuse_rate = 0.0 if stream % 2 == 0 else 0.005
        lines = [malformed_line(rng, refuse_rate) for _ in range(LINES_PER_STREAM)]
        ending = rng.choice([b"\n", b"\r\n"])
        frozen = frozen_feature_dir if stream % 3 == 2 else frozen_dir
        done = tagger(cc_build, frozen, ending.join(lines), "--format", "text" if stream % 4 == 3 else "conll")
        assert done.returncode in (0, 1), f"stream {stream}: exit {done.returncode}\n{done.stderr.decode()[-2000:]}"
        assert done.returncode == 0 or b"tagger: " in done.stderr
        exits.append(done.returncode)
    assert 0 in exits and 1 in exits  # both endings happened


def test_malformed_c_api_calls_never_crash(cc_build, frozen_dir, frozen_feature_dir):
    for seed, frozen in enumerate((frozen_dir, frozen_feature_dir)):
        done = subprocess.run([sys.executable, __file__, os.path.join(cc_build, "libtagger.so"), frozen, str(seed)],
                              capture_output=True, timeout=600)
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        ok, refused = map(int, done.stdout.split())
        assert ok > 0 and refused > 0 and ok + refused == C_API_CALLS


def fuzz_c_api(library: str, frozen: str, seed: int):
    """C_API_CALLS batches of odd tokens, some joined into raw texts: each must be tagged or refused
    with a message."""
    rng = random.Random(seed)
    c_tagger = CTagger(library, frozen)
    ok = refused = 0
    for _ in range(C_API_CALLS):
        sentences = []
        for _ in range(rng.randint(0, 4)):
            tokens = []
            for _ in range(rng.choice([0, 1, 2, 5, 9])):
                kind = rng.random()
                if kind < 0.9:
                    tokens.append(random_text(rng, 10))
                elif kind < 0.95:
                    tokens.append(bytes(rng.randrange(1, 256) for _ in range(rng.randint(0, 6))))
                else:
                    tokens.append(random_text(rng, 1) * rng.choice([100, 5000]))
            sentences.append(tokens)
        features = None
        if c_tagger.num_feature_columns and rng.random() < 0.9:
            features = [[[random_text(rng, 3) for _ in range(c_tagger.num_feature_columns)] for _ in s]
                        for s in sentences]
        raw_text = rng.random() < 0.2  # the sentences' tokens joined, as raw texts
        try:
            if raw_text:
                texts = [(b" " if any(isinstance(t, bytes) for t in s) else " ").join(
                    t.encode() if isinstance(t, str) and any(isinstance(u, bytes) for u in s) else t for t in s)
                    for s in sentences]
                for text, (tokens, tags, confidences) in zip(texts, c_tagger.tag_text(texts)):
                    text = text.decode() if isinstance(text, bytes) else text
                    assert all(text[start:end] == token for token, start, end in tokens)
                    assert len(tags) == len(confidences) == len(tokens)
            else:
                result = c_tagger.tag(sentences, features)
                assert [len(tags) for tags, _ in result] == [len(s) for s in sentences]
            ok += 1
        except TaggerError as e:
            assert str(e)
            refused += 1
    print(ok, refused)


if __name__ == "__main__":
    fuzz_c_api(sys.argv[1], sys.argv[2], int(sys.argv[3]))


@pytest.mark.parametrize("emb_class, bert_format, extra", [
    ("bert", "google", []),
    ("bert", "hf", ["--set", "bert_finetune=true", "--set", "bert_learning_rate=0.001"]),
    ("bert+elmo", "hf", []),
])
def test_bert_models_tag_alike_in_every_runtime(emb_class, bert_format, extra, cc_build, corpus_dir, emb_dir, tmp_path):
    """WordPiece, its windows and the word alignment run in the graph: a BERT model's checkpoint,
    export, frozen graph, libtagger and the C++ runner give the same tags (and confidences) on CoNLL
    input and on raw text. Windows of 8 pieces make long sentences take several."""
    import tiny_contextual as tiny

    import export
    import freeze
    from conftest import train_tiny
    from ner.data.conll import read_conll
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import ExportedTagger, FrozenTagger, NativeFrozenTagger, load_checkpoint
    write = tiny.write_bert_google if bert_format == "google" else tiny.write_bert_hf
    settings = ["--set", "emb_class=" + emb_class, "--set", f"bert_path={write(tmp_path / 'bert')}",
                "--set", "bert_max_seq_length=8", "--set", "feature_columns=[]", "--set", "lstm_units=8"]
    if "elmo" in emb_class:
        settings += ["--set", f"elmo_path={tiny.write_elmo(tmp_path / 'elmo')}"]
    model_dir = train_tiny(corpus_dir, emb_dir, str(tmp_path / "model"), "--epochs", "1", *settings, *extra)
    export.main(["--model_dir", model_dir])
    freeze.main(["--model_dir", model_dir])
    export_dir, frozen_dir = os.path.join(model_dir, "export"), os.path.join(model_dir, "frozen")
    with open(os.path.join(frozen_dir, "serving.json"), encoding="utf-8") as f:
        assert {"_fast_bert_normalizer.so", "_fast_wordpiece_tokenizer.so"} <= set(json.load(f)["op_libraries"])

    sentences = [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart][:30]
    checkpoint = load_checkpoint(model_dir)
    expected = tag_sentences(checkpoint, sentences, "iob2", batch_size=8)
    library = os.path.join(cc_build, "libtagger.so")
    for model in (ExportedTagger(export_dir), FrozenTagger(frozen_dir), NativeFrozenTagger(frozen_dir, library)):
        tagged = tag_sentences(model, sentences, "iob2", batch_size=8)
        assert [tags for tags, _ in tagged] == [tags for tags, _ in expected], type(model).__name__
        for (_, confidences), (_, reference) in zip(tagged, expected):
            assert list(confidences) == pytest.approx(list(reference), abs=2e-4)
    conll = "".join("".join(f"{word}\n" for word in s.words) + "\n" for s in sentences).encode()
    done = tagger(cc_build, frozen_dir, conll)
    assert done.returncode == 0, done.stderr.decode()
    runner_tags = [[line.split()[-1] for line in block.splitlines()] for block in done.stdout.decode().split("\n\n") if block]
    assert runner_tags == [tags for tags, _ in expected]

    rows, tagged_texts = checkpoint_tags(model_dir, TRICKY_TEXTS)
    stdin = "".join(text + "\n" for text in TRICKY_TEXTS).encode()
    done = tagger(cc_build, frozen_dir, stdin, "--format", "text")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode() == "".join("".join(f"{w} {t}\n" for (w, _, _), t in zip(row, result[0])) + "\n"
                                           for row, result in zip(rows, tagged_texts) if row)



# Models that read document context (bert_context=document): the runner and the C API read a
# document whole and give each sentence the words around it, as inference.py and the loaders do.

@pytest.fixture(scope="module")
def context_model(document_model_dir, tmp_path_factory):
    """(model folder, its frozen folder): conftest's tiny BERT model that reads up to 16 words of its
    document on each side of a sentence, in windows of 16 pieces."""
    import freeze
    frozen = str(tmp_path_factory.mktemp("frozen") / "document")
    freeze.main(["--model_dir", document_model_dir, "--out", frozen])
    with open(os.path.join(frozen, "serving.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["context_words"] == 16 and {"left_context", "right_context"} <= set(manifest["inputs"])
    return document_model_dir, frozen


def split_sentences(corpus_dir, split="test"):
    """The split's sentences, -DOCSTART- lines left out; their document numbers say which documents."""
    from ner.data.conll import read_conll
    return [s for s in read_conll(os.path.join(corpus_dir, f"{split}.txt")) if not s.docstart]


def assert_tagged_alike(tagged, expected, what=""):
    """The same tags, and confidences within 2e-4 (batches of other sizes may move their last bits)."""
    assert [list(tags) for tags, _ in tagged] == [list(tags) for tags, _ in expected], what
    for (_, confidences), (_, reference) in zip(tagged, expected):
        assert list(confidences) == pytest.approx(list(reference), abs=2e-4), what


def largest_difference(tagged, other) -> float:
    return max(abs(a - b) for (_, x), (_, y) in zip(tagged, other) for a, b in zip(x, y))


def test_context_model_tags_alike_in_the_loaders_and_the_c_api(context_model, cc_build, corpus_dir):
    """NativeFrozenTagger, FrozenTagger and the checkpoint on sentences with their document contexts;
    the C API's own document rule (tagger_tag_document) and explicit contexts (tagger_tag_context)
    give the same; tagged alone, each sentence reads no context, and that moves the confidences."""
    import dataclasses

    from ner.data.documents import NO_CONTEXT, document_contexts
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import FrozenTagger, NativeFrozenTagger, load_checkpoint
    model_dir, frozen = context_model
    library = os.path.join(cc_build, "libtagger.so")
    sentences = split_sentences(corpus_dir)
    contexts = document_contexts(sentences, 16)
    assert sum(len(left) + len(right) == 32 for left, right in contexts) > len(sentences) // 3  # windows trim them
    checkpoint = load_checkpoint(model_dir)
    expected = tag_sentences(checkpoint, sentences, "iob2", batch_size=8)
    alone = tag_sentences(checkpoint, sentences, "iob2", batch_size=8, contexts=[NO_CONTEXT] * len(sentences))
    assert largest_difference(expected, alone) > 1e-3
    for model in (FrozenTagger(frozen), NativeFrozenTagger(frozen, library)):
        assert_tagged_alike(tag_sentences(model, sentences, "iob2", batch_size=8), expected, type(model).__name__)
        assert_tagged_alike(tag_sentences(model, sentences, "iob2", batch_size=8, contexts=[NO_CONTEXT] * len(sentences)),
                            alone, type(model).__name__ + " alone")

    c_tagger = CTagger(library, frozen)
    assert c_tagger.context_words == 16
    words = [s.words for s in sentences]
    assert_tagged_alike(c_tagger.tag(words, contexts=contexts), expected, "tagger_tag_context")
    assert_tagged_alike(c_tagger.tag(words), alone, "tagger_tag")
    documents = {}
    for sentence in sentences:
        documents.setdefault(sentence.document, []).append(sentence.words)
    assert_tagged_alike([t for document in documents.values() for t in c_tagger.tag_document(document)], expected,
                        "tagger_tag_document")
    # A document of more sentences than libtagger tags in one batch: dev and test as one.
    long_document = [dataclasses.replace(s, document=0) for s in [*split_sentences(corpus_dir, "dev"), *sentences]]
    assert len(long_document) > 64
    assert_tagged_alike(c_tagger.tag_document([s.words for s in long_document]),
                        tag_sentences(checkpoint, long_document, "iob2", batch_size=16), "a long document")


def test_c_api_contexts_are_checked(context_model, cc_build, frozen_dir, tmp_path):
    from test_loaders import edit_manifest

    from ner.serving.loaders import load_model
    # The graph's context inputs have the dtype they are fed, or the folder is refused alike.
    folder, _ = damaged_copy(context_model[1], tmp_path, edit_manifest(
        lambda m: m["inputs"].update(right_context=m["inputs"]["lengths"])))
    with pytest.raises(ValueError) as python_error:
        load_model(folder)
    with pytest.raises(TaggerError) as c_error:
        CTagger(os.path.join(cc_build, "libtagger.so"), folder)
    assert str(c_error.value) == str(python_error.value) and '("right_context" in "inputs")' in str(c_error.value)

    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), context_model[1])
    for contexts, message in (([(["a", ""], [])], "word 1 of the left context of sentence 0 is empty"),
                              ([([], [b"caf\xe9"])], "word 0 of the right context of sentence 0 is not UTF-8")):
        with pytest.raises(TaggerError, match=message):
            c_tagger.tag([["Paris"]], contexts=contexts)
    for bad, message in (([["Paris"], []], "sentence 1 is empty"), ([], "no sentences"),
                         ([["Paris"], ["a", b"\xff"]], "token 1 of sentence 1 is not UTF-8")):
        with pytest.raises(TaggerError, match=message):
            c_tagger.tag_document(bad)
    # A model without context ignores contexts, and its documents are sentences.
    plain = CTagger(os.path.join(cc_build, "libtagger.so"), frozen_dir)
    assert plain.context_words == 0
    sentences = [["Angela", "Merkel", "visited", "Paris"], ["She", "left"]]
    assert plain.tag_document(sentences) == plain.tag(sentences) == plain.tag(sentences, contexts=[(["x"], ["y"])] * 2)
    texts = ["Angela Merkel visited Paris.", "", "She left."]
    assert plain.tag_text_document(texts) == plain.tag_text(texts)


def test_runner_tags_conll_documents_as_inference_py_does(context_model, cc_build, corpus_dir, tmp_path):
    """Byte for byte, a document from one -DOCSTART- line to the next (or the end), from the frozen
    and the export folder."""
    import export
    import inference
    model_dir, frozen = context_model
    source = os.path.join(corpus_dir, "test.txt")
    expected = tmp_path / "pred.txt"
    inference.main(["--model_dir", model_dir, "--input", source, "--output", str(expected), "--scheme", "iob2"])
    assert any(line.split()[-1] != "O" for line in expected.read_text(encoding="utf-8").splitlines() if line)  # entities
    export_dir = str(tmp_path / "export")
    export.main(["--model_dir", model_dir, "--out", export_dir])
    for folder in (frozen, export_dir):  # the C API reads either's serving.json
        done = tagger(cc_build, folder, open(source, "rb").read())
        assert done.returncode == 0, done.stderr.decode()
        assert done.stdout.decode() == expected.read_text(encoding="utf-8")
        assert b"60 sentences in 7 documents" in done.stderr and b"per document" in done.stderr
    # A bad line in the second sentence of the third document: what came before it is written, its
    # document's first sentence tagged as the document read so far (as if the input ended there).
    lines = open(source, encoding="utf-8").read().split("\n")
    third = [i for i, line in enumerate(lines) if line.startswith("-DOCSTART-")][2]
    first_end = lines.index("", third + 2)  # the blank line after the document's first sentence
    lines[first_end + 2] = "two columns"
    truncated = tmp_path / "truncated.txt"
    truncated.write_text("\n".join(lines[:first_end + 1]) + "\n", encoding="utf-8")
    inference.main(["--model_dir", model_dir, "--input", str(truncated), "--output", str(expected), "--scheme", "iob2"])
    done = tagger(cc_build, frozen, "\n".join(lines).encode())
    assert done.returncode == 1
    assert f"<stdin>:{first_end + 3}: expected 4 columns like line".encode() in done.stderr, done.stderr.decode()
    assert done.stdout.decode() == expected.read_text(encoding="utf-8")


def text_documents(corpus_dir) -> list[list[str]]:
    """Documents of raw text, one sentence a line: short and long ones (the longest has more lines
    than libtagger tokenizes at once), with a line of no token (it gives its neighbours no words)."""
    lines = [" ".join(s.words) for s in [*split_sentences(corpus_dir, "dev"), *split_sentences(corpus_dir)]]
    return [lines[:5] + ["\u200b"] + lines[5:9], lines[9:12], lines[12:90], ["Angela Merkel visited Paris ."], lines[90:]]


def test_runner_tags_text_documents_as_inference_py_does(context_model, cc_build, corpus_dir, tmp_path):
    """Blank lines (whitespace as Python's str.strip() sees it, or none) end documents of raw text:
    --format text byte for byte, --json with its confidences, as inference.py writes them; each
    line its own document reads no context, and that moves the confidences."""
    import inference
    model_dir, frozen = context_model
    documents = text_documents(corpus_dir)
    blanks = ["\n \t\n", "\n\u00a0\u3000\n", "\n\n\n", "\n\n"]  # end the last line, then blank lines
    stdin = ("\n" + "".join(document + blank for document, blank in zip(map("\n".join, documents), blanks + [""]))
             + "\n").encode()
    source = tmp_path / "in.txt"
    source.write_bytes(stdin)
    outputs = {}
    for args in ([], ["--json"]):
        out = tmp_path / "out.txt"
        inference.main(["--model_dir", model_dir, "--input", str(source), "--output", str(out), "--format", "text", *args])
        done = tagger(cc_build, frozen, stdin, "--format", "text", *args)
        assert done.returncode == 0, done.stderr.decode()
        assert b"in 5 documents" in done.stderr
        outputs[bool(args)] = expected, got = out.read_text(encoding="utf-8"), done.stdout.decode()
        if not args:
            assert got == expected
            continue
        expected, got = ([json.loads(line) for line in text.splitlines()] for text in (expected, got))
        assert len(got) == len(expected) == sum(map(len, documents)) - 1  # the line of no token writes nothing
        for python_line, runner_line in zip(expected, got):
            assert runner_line["confidences"] == pytest.approx(python_line["confidences"], abs=2e-4)
            python_line["confidences"] = runner_line["confidences"] = None
            for entity in python_line["entities"] + runner_line["entities"]:
                entity["confidence"] = round(entity["confidence"], 2)
            assert runner_line == python_line
    alone = tagger(cc_build, frozen, "".join(line + "\n\n" for document in documents for line in document).encode(),
                   "--format", "text", "--json")
    assert alone.returncode == 0, alone.stderr.decode()
    confidences = [[json.loads(line)["confidences"] for line in text.splitlines()]
                   for text in (outputs[True][1], alone.stdout.decode())]
    assert max(abs(a - b) for x, y in zip(*confidences) for a, b in zip(x, y)) > 1e-3


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_tagger_help_is_its_usage_on_stdout_and_exit_0(flag, cc_build):
    done = subprocess.run([os.path.join(cc_build, "tagger"), flag], capture_output=True)
    assert (done.returncode, done.stderr) == (0, b"")
    assert done.stdout.startswith(b"usage: tagger FOLDER ") and b"--verbose" in done.stdout
    bad = subprocess.run([os.path.join(cc_build, "tagger"), "--helpful"], capture_output=True)
    assert (bad.returncode, bad.stdout) == (2, b"")
    assert bad.stderr.startswith(b"tagger: unexpected argument --helpful\nusage: tagger FOLDER ")


def test_tagger_keeps_tensorflow_logs_off_unless_asked(cc_build, frozen_dir):
    """As TensorFlow loads it logs (CPU features, an MLIR pass); TF_CPP_MIN_LOG_LEVEL, which the
    runner sets unless the caller chose, keeps them off; --verbose or NER_VERBOSE=1 shows them."""
    base = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "NER_VERBOSE")}
    runs = {"quiet": ([], {}), "--verbose": (["--verbose"], {}), "NER_VERBOSE=1": ([], {"NER_VERBOSE": "1"}),
            "NER_VERBOSE=0": ([], {"NER_VERBOSE": "0"})}
    stderr = {}
    for name, (flags, env) in runs.items():
        done = subprocess.run([os.path.join(cc_build, "tagger"), frozen_dir, "--format", "text", *flags],
                              input=b"Hello world\n", capture_output=True, env=dict(base, **env))
        assert done.returncode == 0, done.stderr.decode()
        stderr[name] = done.stderr.decode().splitlines()
    for name in ("quiet", "NER_VERBOSE=0"):  # only the runner's own report, which counts right
        assert [line for line in stderr[name] if not line.startswith("tagger: ")] == []
        assert stderr[name][0].endswith("; 1 sentence")
    for name in ("--verbose", "NER_VERBOSE=1"):
        assert any("cpu_feature_guard" in line for line in stderr[name])
