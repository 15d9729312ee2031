"""inference/cc: the CMake build, the tagger command against inference.py, the C API through
ctypes, malformed input that must end in a clean error, never a crash, and the serving.json
files that the Python loader refuses (test_loaders.py), refused with the same messages.

Run as a script (python tests/test_cc.py LIBRARY FROZEN_DIR SEED) it is the fuzzing client of
the C API, in a process of its own so that a crash shows as a signal instead of killing pytest.
"""
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


def test_text_format_tags_whitespace_tokens(cc_build, frozen_dir):
    done = tagger(cc_build, frozen_dir, "Klaus Müller visited Lisbon\n\n  \nHello\tworld\n".encode(), "--format", "text")
    assert done.returncode == 0, done.stderr.decode()
    c_tagger = CTagger(os.path.join(cc_build, "libtagger.so"), frozen_dir)
    sentences = [["Klaus", "Müller", "visited", "Lisbon"], ["Hello", "world"]]
    expected = "".join("".join(f"{w} {t}\n" for w, t in zip(words, tags)) + "\n"
                       for words, (tags, _) in zip(sentences, c_tagger.tag(sentences)))
    assert done.stdout.decode() == expected


@pytest.mark.parametrize("stdin, args, message", [
    (b"a NN O\nb\xff NN O\n", [], b"<stdin>:2: expected UTF-8 text, found invalid byte 0xff"),
    (b"a NN O\n" + b"b" * (MAX_LINE_BYTES + 1) + b"\n", [], b"<stdin>:2: expected a line of at most"),
    (b"a NN O\nb NN\n", [], b"<stdin>:2: expected 3 columns like line 1, found 2"),
    (b"a\tNN\t\tO\n", [], b"<stdin>:1: expected non-empty columns"),
    (b"a\x00b NN O\n", [], b"<stdin>:1: expected text, found a NUL byte"),
    (b"a NN O\n", ["--format", "xml"], b"--format expects conll or text"),
    (b"a NN O\n", ["--threads", "many"], b"--threads expects a number"),
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
                                  "features without feature_columns", "nested 65 deep", "a NUL character"])
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
    """C_API_CALLS batches of odd tokens: each must be tagged or refused with a message."""
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
        try:
            result = c_tagger.tag(sentences, features)
            assert [len(tags) for tags, _ in result] == [len(s) for s in sentences]
            ok += 1
        except TaggerError as e:
            assert str(e)
            refused += 1
    print(ok, refused)


if __name__ == "__main__":
    fuzz_c_api(sys.argv[1], sys.argv[2], int(sys.argv[3]))
