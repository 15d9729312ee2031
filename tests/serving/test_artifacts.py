"""export.py, freeze.py and the loaders of serving.py: a checkpoint, its SavedModel and its frozen
graph tag alike."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

import export
import freeze
from ner import model_folder
from ner.data.conll import read_conll
from ner.model.tagger import Tagger
from ner.model.tagging import tag_sentences
from ner.serving import loaders
from ner.serving.loaders import load_model


def read_test(corpus_dir):
    return [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]


@pytest.mark.parametrize("model_fixture, frozen_fixture", [("model_dir", "frozen_dir"),
                                                           ("feature_model_dir", "frozen_feature_dir")])
def test_checkpoint_export_and_frozen_give_the_same_predictions(model_fixture, frozen_fixture, corpus_dir, tmp_path,
                                                                request):
    model_dir, frozen_dir = request.getfixturevalue(model_fixture), request.getfixturevalue(frozen_fixture)
    export_dir = str(tmp_path / "export")
    export.main(["--model_dir", model_dir, "--out", export_dir])
    sentences = read_test(corpus_dir)
    reference = tag_sentences(load_model(model_dir), sentences, "iob2", batch_size=32)
    for folder, kind in ((export_dir, loaders.ExportedTagger), (frozen_dir, loaders.FrozenTagger)):
        model = load_model(folder)
        assert isinstance(model, kind)
        tagged = tag_sentences(model, sentences, "iob2", batch_size=32)
        assert [tags for tags, _ in tagged] == [tags for tags, _ in reference]
        # The frozen folder's numpy head computes marginals in float64, the graph's loops for
        # batches this size in float32 log space, whose rounding grows with sentence length.
        np.testing.assert_allclose(np.concatenate([c for _, c in tagged]),
                                   np.concatenate([c for _, c in reference]), atol=2e-4)


# Raw text that exercises every tokenizer rule and the cluster handling.
RAW_TEXTS = ["Klaus M\u00fcller visited Lisbon on Monday.", "I don't think John's car is in the U.S. -- it's 3.5 km away...",
             "Zu\u0308rich \U0001f1eb\U0001f1f7 1\ufe0f\u20e3 \u0915\u094d\u0937 O'Neill", "", " \u200b\ufeff ",
             "\ufeffAnna\u200bmet Peter(Berlin)", "a" * 300]


def test_raw_text_gives_the_same_tokens_offsets_tags_and_confidences_everywhere(model_dir, tmp_path):
    """The tokenizer graph travels in the export and the frozen graph: every form tokenizes alike."""
    from ner.data.text import TextLine, text_sentences
    export_dir, frozen_dir = str(tmp_path / "export"), str(tmp_path / "frozen")
    export.main(["--model_dir", model_dir, "--out", export_dir])
    freeze.main(["--model_dir", model_dir, "--out", frozen_dir])
    lines = [TextLine(text, number) for number, text in enumerate(RAW_TEXTS, 1)]
    results = {}
    for folder, kind in ((model_dir, Tagger), (export_dir, loaders.ExportedTagger), (frozen_dir, loaders.FrozenTagger)):
        model = loaders.load_checkpoint(folder) if kind is Tagger else load_model(folder)
        if kind is loaders.FrozenTagger and not isinstance(model, kind):
            model = loaders.FrozenTagger(folder)
        assert isinstance(model, kind)
        items = text_sentences(lines, model.tokenize)
        tagged = tag_sentences(model, [item.sentence for item in items], "iob2", batch_size=4)
        results[kind] = [(item.sentence.words, item.offsets, tags) for item, (tags, _) in zip(items, tagged)], \
            np.concatenate([confidence for _, confidence in tagged])
    reference, reference_confidences = results.pop(Tagger)
    assert [len(words) for words, _, _ in reference] == [7, 18, 5, 0, 0, 6, 1]
    for kind, (tokens_and_tags, confidences) in results.items():
        assert tokens_and_tags == reference, kind
        np.testing.assert_allclose(confidences, reference_confidences, atol=2e-4)


def test_signature_takes_features_only_when_the_model_reads_them(model_dir, feature_model_dir, tmp_path):
    for folder, inputs in ((model_dir, {"words", "lengths"}), (feature_model_dir, {"words", "lengths", "features"})):
        out = str(tmp_path / os.path.basename(folder))
        export.main(["--model_dir", folder, "--out", out])
        signature = tf.saved_model.load(out).signatures[model_folder.SIGNATURE]
        assert set(signature.structured_input_signature[1]) == inputs
        assert set(signature.structured_outputs) == {"tags", "confidence"}
        config = json.load(open(os.path.join(out, model_folder.CONFIG)))  # the export is self-contained
        assert config["feature_columns"] == ([1, 2] if "features" in inputs else [])


def test_export_replaces_an_older_export_whole(model_dir, tmp_path):
    out = tmp_path / "export"
    out.mkdir()
    (out / "saved_model.pb").write_bytes(b"an older export's graph")
    (out / "variables").mkdir()
    (out / "variables" / "variables.data-00001-of-00002").write_text("from an older export")  # not in the new one
    export.main(["--model_dir", model_dir, "--out", str(out)])
    assert "variables.data-00001-of-00002" not in os.listdir(out / "variables") and "saved_model.pb" in os.listdir(out)
    assert os.listdir(tmp_path) == ["export"]  # no temporary folder left behind


def test_frozen_graph_creates_its_tables_and_fills_them_with_the_init_op(frozen_dir):
    manifest = json.load(open(os.path.join(frozen_dir, model_folder.MANIFEST)))
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(os.path.join(frozen_dir, manifest["graph"]), "rb").read())
    # Nothing is fed but the data: no variable and no table handle is left as an input.
    fed = {node.name for node in graph_def.node if node.op == "Placeholder"
           and node.attr["dtype"].type != tf.resource.as_datatype_enum}
    assert {name.split(":")[0] for name in manifest["inputs"].values()} <= fed
    assert not [node for node in graph_def.node if node.op in ("VarHandleOp", "ReadVariableOp")
                or (node.op == "Placeholder" and node.attr["dtype"].type == tf.resource.as_datatype_enum)]
    assert sum(node.op == "HashTableV2" for node in graph_def.node) == 2  # words and characters
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    feeds = {manifest["inputs"]["words"]: [["Paris", "is", "nice"]], manifest["inputs"]["lengths"]: [3]}
    with tf.compat.v1.Session(graph=graph) as session:
        with pytest.raises(tf.errors.FailedPreconditionError, match="not initialized"):
            session.run(manifest["outputs"]["tags"], feeds)
        session.run(manifest["init_op"])
        tags = session.run(manifest["outputs"]["tags"], feeds)
    assert tags.shape == (1, 3)


def test_frozen_emissions_run_no_crf_op(frozen_dir):
    """The outputs carry no control inputs, so fetching the emission scores (what the native heads
    read) runs the encoder only, not the CRF's decoding or its marginals' cond."""
    manifest = json.load(open(os.path.join(frozen_dir, model_folder.MANIFEST)))
    graph_def = tf.compat.v1.GraphDef()
    graph_def.ParseFromString(open(os.path.join(frozen_dir, manifest["graph"]), "rb").read())
    nodes = {node.name: node for node in graph_def.node}
    needed, pending = set(), [manifest["outputs"]["emissions"].split(":")[0]]
    while pending:
        name = pending.pop()
        if name not in needed:
            needed.add(name)
            pending += [source.lstrip("^").split(":")[0] for source in nodes[name].input]
    assert not {nodes[name].op for name in needed} & {"While", "StatelessWhile", "If", "Switch", "Merge", "NoOp"}
    assert "BlockLSTM" in {nodes[name].op for name in needed}


def test_load_model_reports_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model folder not found"):
        load_model(str(tmp_path / "nothing"))
