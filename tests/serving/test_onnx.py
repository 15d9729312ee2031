"""Issue 31: the ONNX folder (export.py --format onnx) and its ONNX Runtime tagger: every encoder
converts to the emission scores TensorFlow computes, the folder tags as the checkpoint does through
inference.py, with TensorFlow impossible to import, and it is owned and sealed like the other
folders."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime
import pytest
import tensorflow as tf
from test_commands import assert_user_error, run

from conftest import ENCODER_VARIANTS, ROOT, TINY_CONFIG, folder_state
from ner import integrity, model_folder
from ner.config import Config
from ner.data.batching import padded_batch
from ner.data.conll import read_conll
from ner.data.vocabulary import RESERVED, Vocabulary
from ner.model.tagger import Tagger
from ner.serving.loaders import load_checkpoint
from ner.serving.numpy_head import NumpyHead
from ner.serving.onnx_export import emission_function, onnx_model

WORDS = ["john", "went", "to", "paris", "the", "berlin"]


def export_onnx(model_dir, out, *more):
    import export
    export.main(["--model_dir", str(model_dir), "--format", "onnx", "--out", str(out), *more])
    return str(out)


@pytest.fixture(scope="module")
def onnx_dir(model_dir, tmp_path_factory):
    return export_onnx(model_dir, tmp_path_factory.mktemp("onnx") / "tiny")


@pytest.fixture(scope="module")
def onnx_feature_dir(feature_model_dir, tmp_path_factory):
    return export_onnx(feature_model_dir, tmp_path_factory.mktemp("onnx") / "tiny_features")


def featurizer_inputs(model, batch: dict) -> dict:
    """model.onnx's inputs for a padded batch, made by the graph's own featurizer."""
    featurizer = model.featurizer
    words = tf.constant(batch["words"].astype(str))
    inputs = {"word_ids": featurizer.word_ids(words), "char_ids": featurizer.char_ids(words), "lengths": batch["lengths"]}
    if model.shape_embedding is not None:
        inputs["shape_ids"] = featurizer.shape_ids(words)
    if model.config.feature_columns:
        inputs["column_ids"] = tf.stack(featurizer.column_ids(tf.constant(batch["features"].astype(str))), axis=-1)
    return {name: np.asarray(value, np.int32) for name, value in inputs.items()}


def test_every_encoder_converts_to_the_emissions_tensorflow_computes(tmp_path):
    """Each encoder variant in a Tagger with every non-contextual feature (characters, word shapes,
    a feature column, a highway layer, two LSTM layers): model.onnx's scores are TensorFlow's."""
    embeddings = np.random.default_rng(0).normal(size=(RESERVED + len(WORDS), 6)).astype(np.float32)
    np.save(tmp_path / "embeddings.npy", embeddings, allow_pickle=False)
    vocab = Vocabulary(words=WORDS, chars=sorted(set("".join(WORDS))), entity_types=["LOC", "PER"],
                       columns={1: ["NNP", "VBD"]}, meta={"lowercase": True, "dim": 6, "num_oov": 1}, folder=str(tmp_path))
    rng = np.random.default_rng(1)
    batch, steps, letters = 3, 7, 5
    ids = {"word_ids": rng.integers(0, RESERVED + len(WORDS), (batch, steps)),
           "char_ids": rng.integers(0, RESERVED + len(vocab.chars), (batch, steps, letters)),
           "shape_ids": rng.integers(0, 7, (batch, steps)), "column_ids": rng.integers(0, 4, (batch, steps, 1)),
           "lengths": np.array([7, 3, 5])}
    ids = {name: value.astype(np.int32) for name, value in ids.items()}
    real = np.arange(steps)[None] < ids["lengths"][:, None]
    for variant, assignments in ENCODER_VARIANTS.items():
        config = Config().with_overrides(TINY_CONFIG[1::2] + assignments).replace(
            feature_columns=[1], highway_layers=1, lstm_layers=2, qrnn_layers=2, transformer_layers=2)
        tf.random.set_seed(0)
        model = Tagger(config, vocab)
        function, specs = emission_function(model)
        expected = function(*[ids[spec.name] for spec in specs])["emissions"].numpy()
        proto = onnx_model(model)
        lstms = [node for node in proto.graph.node if node.op_type == "LSTM"]
        # Each BiLSTM layer is one bidirectional node (both directions in one kernel call).
        assert len(lstms) == (config.lstm_layers if "bilstm" in config.encoder else 0), variant
        assert all(onnx.helper.get_attribute_value(attribute) == b"bidirectional"
                   for node in lstms for attribute in node.attribute if attribute.name == "direction")
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        assert [item.name for item in session.get_inputs()] == [spec.name for spec in specs]
        emissions = session.run(["emissions"], {spec.name: ids[spec.name] for spec in specs})[0]
        np.testing.assert_allclose(emissions[real], expected[real], atol=1e-4, err_msg=variant)


@pytest.mark.parametrize("which", ["words", "features"])
def test_onnx_emissions_and_tags_equal_the_checkpoints_on_the_test_set(which, model_dir, feature_model_dir, onnx_dir,
                                                                        onnx_feature_dir, corpus_dir):
    model_dir, folder = (model_dir, onnx_dir) if which == "words" else (feature_model_dir, onnx_feature_dir)
    model = load_checkpoint(model_dir)
    with open(os.path.join(folder, model_folder.MANIFEST), encoding="utf-8") as f:
        manifest = json.load(f)
    assert manifest["inputs"] == (["word_ids", "char_ids", "shape_ids", "lengths"] if which == "words"
                                  else ["word_ids", "char_ids", "shape_ids", "column_ids", "lengths"])
    assert manifest["format"] == "onnx" and manifest["int8"] is False
    session = onnxruntime.InferenceSession(os.path.join(folder, manifest["model"]), providers=["CPUExecutionProvider"])
    head = NumpyHead(manifest["head"])
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]
    batch = padded_batch(sentences, model.config.feature_columns)
    emissions = session.run(["emissions"], featurizer_inputs(model, batch))[0]
    expected = model.emissions(tf.constant(batch["words"].astype(str)), batch["lengths"],
                               tf.constant(batch["features"].astype(str)), False)
    real = np.arange(batch["words"].shape[1])[None] < batch["lengths"][:, None]
    np.testing.assert_allclose(emissions[real], expected.numpy()[real], atol=1e-4)
    tagged = head.predict(emissions, batch["lengths"])
    reference = model.predict(batch["words"].astype(str), batch["lengths"], batch["features"].astype(str))
    assert (tagged["tags"][real] == reference["tags"].numpy()[real]).all()
    np.testing.assert_allclose(tagged["confidence"], reference["confidence"].numpy(), atol=1e-4)


def test_a_batch_run_a_few_rows_at_a_time_gives_the_scores_of_one_run(model_dir, onnx_dir, corpus_dir, monkeypatch):
    from ner.serving import onnx_tagger
    tagger = onnx_tagger.OnnxTagger(onnx_dir)
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]
    batch = padded_batch(sentences, [])
    inputs = tagger._ids.inputs(batch["words"].astype(str), batch["lengths"], batch["features"])
    whole = tagger.emissions(inputs)
    monkeypatch.setattr(onnx_tagger, "CHAR_POSITIONS_PER_RUN", inputs["char_ids"][0].size * 2)  # two rows per run
    assert len(sentences) > 2 and np.array_equal(tagger.emissions(inputs), whole)


def test_int8_quantizes_the_lstm_and_matrix_products_only(model_dir, tmp_path):
    folder = export_onnx(model_dir, tmp_path / "int8", "--int8")
    # Quantizing leaves no file of its own behind to refuse, and says nothing but what was written.
    done = run("export.py", "--model_dir", model_dir, "--format", "onnx", "--int8", "--out", folder)
    assert done.returncode == 0 and done.stdout.decode() == f"wrote {folder}\n" and not done.stderr, done.stderr
    with open(os.path.join(folder, model_folder.MANIFEST), encoding="utf-8") as f:
        assert json.load(f)["int8"] is True
    ops = {node.op_type for node in onnx.load(os.path.join(folder, model_folder.ONNX_MODEL)).graph.node}
    assert "DynamicQuantizeLSTM" in ops and "MatMulInteger" in ops and "LSTM" not in ops
    assert "Conv" in ops  # the char CNN stays float
    assert_user_error(run("export.py", "--model_dir", model_dir, "--int8", "--out", tmp_path / "x"),
                      "--int8", "--format onnx")


@pytest.mark.parametrize("fmt", ["conll", "text"])
def test_inference_on_the_onnx_folder_writes_the_checkpoints_bytes(fmt, model_dir, onnx_dir, corpus_dir, tmp_path):
    source = os.path.join(corpus_dir, "test.txt")
    if fmt == "text":
        source = tmp_path / "test.txt"
        source.write_text("\n".join(" ".join(s.words) for s in read_conll(os.path.join(corpus_dir, "test.txt"))
                                    if not s.docstart) + "\n", encoding="utf-8")
    outputs = []
    for folder in (model_dir, onnx_dir):
        out = tmp_path / f"{os.path.basename(folder)}.{fmt}"
        done = run("inference.py", "--model_dir", folder, "--input", source, "--format", fmt, "--output", out)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_feature_model_inference_on_the_onnx_folder_writes_the_checkpoints_bytes(feature_model_dir, onnx_feature_dir,
                                                                                 corpus_dir, tmp_path):
    outputs = []
    for folder in (feature_model_dir, onnx_feature_dir):
        out = tmp_path / f"{os.path.basename(folder)}.txt"
        done = run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt"),
                   "--output", out)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


def test_a_softmax_qrnn_model_through_its_onnx_folder_writes_the_checkpoints_bytes(corpus_dir, emb_dir, tmp_path):
    """The softmax head decoded by numpy, and the QRNN's fo-pooling as an ONNX Loop, end to end."""
    from conftest import train_tiny
    model_dir = train_tiny(corpus_dir, emb_dir, str(tmp_path / "qrnn"), "--set", "encoder=qrnn", "--set", "use_crf=false")
    folder = export_onnx(model_dir, tmp_path / "onnx")
    outputs = []
    for each in (model_dir, folder):
        out = tmp_path / f"{os.path.basename(each)}.txt"
        done = run("inference.py", "--model_dir", each, "--input", os.path.join(corpus_dir, "test.txt"), "--output", out)
        assert done.returncode == 0, done.stderr.decode()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]


@pytest.mark.parametrize("fmt", ["conll", "text"])
def test_inference_tags_with_the_onnx_folder_where_tensorflow_cannot_be_imported(fmt, model_dir, onnx_dir, corpus_dir,
                                                                                 tmp_path):
    blocker = tmp_path / "blocked" / "tensorflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text('raise ImportError("TensorFlow is blocked in this test")\n')
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "NER_VERBOSE")}
    env["PYTHONPATH"] = os.pathsep.join([str(blocker.parent), ROOT])
    source = tmp_path / "input.txt"
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]
    source.write_text("\n".join(" ".join(s.words) for s in sentences) + "\n" if fmt == "text"
                      else open(os.path.join(corpus_dir, "test.txt"), encoding="utf-8").read(), encoding="utf-8")

    def inference(folder, out):
        return subprocess.run([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", folder, "--input",
                               source, "--format", fmt, "--output", out], capture_output=True, env=env, timeout=300)
    blocked = tmp_path / "blocked.txt"
    done = inference(onnx_dir, blocked)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr.decode().strip() == ""
    # The blocker works: the checkpoint cannot load there.
    refused = inference(model_dir, tmp_path / "checkpoint.txt")
    assert refused.returncode != 0 and "TensorFlow is blocked" in refused.stderr.decode()
    reference = tmp_path / "reference.txt"
    assert run("inference.py", "--model_dir", model_dir, "--input", source, "--format", fmt,
               "--output", reference).returncode == 0
    assert blocked.read_bytes() == reference.read_bytes()


def test_the_service_answers_from_the_onnx_folder_as_from_the_checkpoint(model_dir, onnx_dir, corpus_dir):
    """serve.py's application (ner/service/http.py) on either folder: the same answers to text and tokens."""
    import asyncio

    from aiohttp.test_utils import TestClient, TestServer

    from ner.service import http
    from ner.serving.loaders import load_model
    words = [list(s.words) for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart][:8]
    requests = [{"text": [" ".join(w) for w in words]}, {"sentences": words}, {"text": "Anna lives in Lisbon."}]

    async def answers(folder):
        async with TestClient(TestServer(http.make_app(load_model(folder), folder), host="127.0.0.1")) as client:
            results = []
            for request in requests:
                async with client.post("/tag", json=request) as response:
                    results.append((response.status, await response.json()))
            return results
    def confidences(results):
        """Each answer's confidences (rounded to 4 places by the service: compared within a unit of
        the last place), taken out of the answers compared whole."""
        return [sentence.pop("confidences") for _, body in results for sentence in body["sentences"]]
    onnx_answers, checkpoint_answers = asyncio.run(answers(onnx_dir)), asyncio.run(answers(model_dir))
    assert all(status == 200 for status, _ in onnx_answers)
    onnx_confidences, checkpoint_confidences = confidences(onnx_answers), confidences(checkpoint_answers)
    assert onnx_answers == checkpoint_answers
    for onnx_values, checkpoint_values in zip(onnx_confidences, checkpoint_confidences, strict=True):
        np.testing.assert_allclose(onnx_values, checkpoint_values, atol=2e-4)


def test_a_changed_byte_in_model_onnx_is_refused_naming_the_file(onnx_dir, corpus_dir, tmp_path):
    folder = tmp_path / "damaged"
    shutil.copytree(onnx_dir, folder)
    model = folder / model_folder.ONNX_MODEL
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 1
    model.write_bytes(bytes(data))
    assert_user_error(run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt")),
                      f"{model}: its SHA-256 is not the one", model_folder.INTEGRITY)


@pytest.mark.parametrize("change, expected", [
    (lambda manifest: manifest.update(inputs=["word_ids", "char_ids", "lengths"]), '"inputs"'),
    (lambda manifest: manifest.update(int8="no"), '"int8"'),
    (lambda manifest: manifest.update(model="../model.onnx"), '"model"'),
    (lambda manifest: manifest["head"].update(type="tree"), 'head "type"'),
    (lambda manifest: manifest.update(format="frozen"), '"format"'),
    (lambda manifest: manifest.pop("tokenizer"), '"tokenizer"'),
])
def test_a_manifest_that_does_not_fit_is_refused(change, expected, onnx_dir, corpus_dir, tmp_path):
    """serving.json changed and sealed again (integrity passes): its own checks refuse it."""
    folder = tmp_path / "edited"
    shutil.copytree(onnx_dir, folder)
    path = folder / model_folder.MANIFEST
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))
    integrity.seal_artifact(str(folder), "export.py")
    assert_user_error(run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt")),
                      f"{path}: expected", expected)


def test_raw_text_is_tokenized_with_the_folders_patterns(onnx_dir, tmp_path):
    """tokenizer.json, not this installation's tables: patterns that cannot build a tokenizer are
    named when the first text comes (CoNLL input never needs them)."""
    folder = tmp_path / "patterns"
    shutil.copytree(onnx_dir, folder)
    patterns = folder / model_folder.TOKENIZER_PATTERNS
    patterns.write_text(json.dumps({**json.loads(patterns.read_text()), "token": "("}))
    integrity.seal_artifact(str(folder), "export.py")
    text = tmp_path / "text.txt"
    text.write_text("Anna lives in Lisbon.\n")
    assert_user_error(run("inference.py", "--model_dir", folder, "--input", text, "--format", "text"),
                      f"{patterns}: corrupt or unreadable tokenizer patterns")


def test_the_onnx_folder_is_owned_like_the_others(model_dir, tmp_path):
    out = tmp_path / "onnx"
    export_onnx(model_dir, out)
    marker = json.loads((out / model_folder.MARKER).read_text())
    assert marker["kind"] == model_folder.ONNX_KIND
    # A second export replaces its files; a file it never writes stops it, as does another kind's folder.
    stale = out / "column7.txt"
    stale.write_text("from an older export\n")
    done = run("export.py", "--model_dir", model_dir, "--format", "onnx", "--out", out)
    assert done.returncode == 0, done.stderr.decode()
    assert not stale.exists() and not [name for name in os.listdir(out) if name.startswith(".ner-staging")]
    (out / "notes.txt").write_text("mine\n")
    before = folder_state(out)
    assert_user_error(run("export.py", "--model_dir", model_dir, "--format", "onnx", "--out", out),
                      f"{out}: --out holds notes.txt", "never writes")
    assert_user_error(run("freeze.py", "--model_dir", model_dir, "--out", out), "export.py --format onnx wrote")
    assert_user_error(run("export.py", "--model_dir", model_dir, "--out", out), "export.py --format onnx wrote")
    assert folder_state(out) == before
    frozen = tmp_path / "frozen"
    assert run("freeze.py", "--model_dir", model_dir, "--out", frozen).returncode == 0
    assert_user_error(run("export.py", "--model_dir", model_dir, "--format", "onnx", "--out", frozen),
                      "is a folder freeze.py wrote")


@pytest.mark.parametrize("changes, expected", [
    ({"emb_class": "bert", "bert_path": "bert_weights"}, "emb_class=bert"),
    ({"emb_class": "elmo", "elmo_path": "elmo_weights"}, "emb_class=elmo"),
    ({"tag_scheme": "iob1"}, "tag_scheme=iob1"),
])
def test_models_it_cannot_convert_are_refused_with_one_line(changes, expected, model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    config = json.loads((folder / model_folder.CONFIG).read_text())
    config.update(changes)
    (folder / model_folder.CONFIG).write_text(json.dumps(config))
    before = folder_state(folder)
    assert_user_error(run("export.py", "--model_dir", folder, "--format", "onnx"),
                      f"{folder}: {expected}", "the ONNX export", "export.py or freeze.py")
    assert folder_state(folder) == before


def test_the_default_onnx_folder_lives_inside_the_model_folder(model_dir, corpus_dir, tmp_path):
    """MODEL_DIR/onnx, like export/ and frozen/: train.py's ownership checks leave it to its own command."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    done = run("export.py", "--model_dir", folder, "--format", "onnx")
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == f"wrote {folder / model_folder.ONNX_DIR}"
    model_folder.check_writable(str(folder), model_folder.TRAIN_KIND, "--model_dir")
    assert model_folder.recognise(str(folder)) == model_folder.TRAIN_KIND
    assert model_folder.recognise(str(folder / model_folder.ONNX_DIR)) == model_folder.ONNX_KIND
