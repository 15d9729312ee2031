"""ELMo: our TensorFlow forward pass on a tiny options.json + weights.hdf5 (bilm's layout) against
an independent numpy forward pass of the same weights; padding independence; a tagger with
ELMo (and with BERT + ELMo stacked) trains, saves, loads, tags, exports and freezes."""
import os

import numpy as np
import pytest
import tensorflow as tf
import tiny_contextual as tiny

from ner.model.features.elmo import ELMo

SENTENCES = [["John", "went", "to", "Zürich", "."],
             ["Unbelievably", "long-winded"],  # longer than max_characters_per_token - 2 bytes: cut
             ["a"]]


def batch(sentences):
    width = max(len(s) for s in sentences)
    return tf.constant([s + [""] * (width - len(s)) for s in sentences]), tf.constant([len(s) for s in sentences])


@pytest.fixture(scope="module")
def elmo_dir(tmp_path_factory):
    return tiny.write_elmo(tmp_path_factory.mktemp("elmo") / "tiny")


def numpy_char_ids(sentence, max_chars):
    """bilm's Batcher: UTF-8 bytes between begin/end-of-word, <S> and </S> words, all ids + 1."""
    def word(w):
        code = [260] * max_chars
        data = w.encode("utf-8", "ignore")[:max_chars - 2]
        code[0] = 258
        code[1:1 + len(data)] = list(data)
        code[len(data) + 1] = 259
        return code

    def marker(c):
        return [258, c, 259] + [260] * (max_chars - 3)
    return np.array([marker(256)] + [word(w) for w in sentence] + [marker(257)]) + 1


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def numpy_elmo(w, options, sentence, clips):
    """bilm's forward pass for one sentence, written out with loops. -> [n, 3, 2 * projection_dim]."""
    cnn, lstm = options["char_cnn"], options["lstm"]
    chars = np.concatenate([np.zeros((1, cnn["embedding"]["dim"])), w["char_embed"]])[
        numpy_char_ids(sentence, cnn["max_characters_per_token"])]  # [S, C, dim]
    pooled = []
    for i, (width, _) in enumerate(cnn["filters"]):
        kernel, bias = w[f"CNN/W_cnn_{i}"][0], w[f"CNN/b_cnn_{i}"]
        positions = [sum(chars[:, p + k] @ kernel[k] for k in range(width)) + bias
                     for p in range(chars.shape[1] - width + 1)]
        pooled.append(np.maximum(np.max(positions, axis=0), 0))  # max over positions, then relu
    x = np.concatenate(pooled, axis=1)
    for k in range(cnn["n_highway"]):
        h = f"CNN_high_{k}/"
        gate = sigmoid(x @ w[h + "W_carry"] + w[h + "b_carry"])
        x = gate * np.maximum(x @ w[h + "W_transform"] + w[h + "b_transform"], 0) + (1 - gate) * x
    x = x @ w["CNN_proj/W_proj"] + w["CNN_proj/b_proj"]
    cell_dim, proj = lstm["dim"], lstm["projection_dim"]
    outputs = []
    for d in (0, 1):
        h = x if d == 0 else x[::-1]
        per_layer = []
        for i in range(lstm["n_layers"]):
            s = f"RNN_{d}/RNN/MultiRNNCell/Cell{i}/LSTMCell/"
            c, m = np.zeros(cell_dim), np.zeros(proj)
            out = []
            for step in h:
                z = np.concatenate([step, m]) @ w[s + "W_0"] + w[s + "B"]
                gi, gj, gf, go = np.split(z, 4)
                c = sigmoid(gf + 1.0) * c + sigmoid(gi) * np.tanh(gj)
                clips["cell"] += int(np.any(np.abs(c) > lstm["cell_clip"]))
                c = np.clip(c, -lstm["cell_clip"], lstm["cell_clip"])
                m = (sigmoid(go) * np.tanh(c)) @ w[s + "W_P_0"]
                clips["proj"] += int(np.any(np.abs(m) > lstm["proj_clip"]))
                m = np.clip(m, -lstm["proj_clip"], lstm["proj_clip"])
                out.append(m)
            out = np.array(out)
            if i > 0 and lstm["use_skip_connections"]:
                out = out + h
            per_layer.append(out if d == 0 else out[::-1])
            h = out
        outputs.append(per_layer)
    layers = [np.concatenate([x, x], 1)] + [np.concatenate([f, b], 1) for f, b in zip(*outputs)]
    return np.stack(layers, axis=1)[1:-1]


def test_forward_pass_matches_numpy(elmo_dir):
    model = ELMo(elmo_dir)
    words, lengths = batch(SENTENCES)
    got = model(words, lengths).numpy()
    assert got.shape == (3, 5, 3, 12) and model.num_layers == 3 and model.output_dim == 12
    clips = {"cell": 0, "proj": 0}
    for row, sentence in enumerate(SENTENCES):
        expected = numpy_elmo(tiny.elmo_weights(), tiny.TINY_ELMO, sentence, clips)
        np.testing.assert_allclose(got[row, :len(sentence)], expected, atol=2e-5)
    assert clips["cell"] > 0 and clips["proj"] > 0  # the clipping was exercised


def test_char_ids_are_bilms(elmo_dir):
    model = ELMo(elmo_dir)
    words, lengths = batch(SENTENCES)
    ids = model.char_ids(words, lengths).numpy()
    for row, sentence in enumerate(SENTENCES):
        expected = numpy_char_ids(sentence, 12)
        np.testing.assert_array_equal(ids[row, :len(sentence) + 2], expected)
        assert not ids[row, len(sentence) + 2:].any()


def test_output_does_not_depend_on_padding_or_the_batch(elmo_dir):
    model = ELMo(elmo_dir)
    together = model(*batch(SENTENCES)).numpy()
    for row, sentence in enumerate(SENTENCES):
        alone = model(*batch([sentence])).numpy()
        np.testing.assert_allclose(together[row, :len(sentence)], alone[0], atol=1e-5)


def test_missing_files_and_datasets_are_reported(tmp_path, elmo_dir):
    with pytest.raises(ValueError, match="no options.json"):
        ELMo(str(tmp_path))
    weights = tiny.elmo_weights()
    del weights["CNN_high_1/W_transform"]
    with pytest.raises(ValueError, match="no dataset CNN_high_1/W_transform"):
        ELMo(tiny.write_elmo(tmp_path / "broken", weights=weights))


def read_test(corpus_dir):
    from ner.data.conll import read_conll
    return [s for s in read_conll(os.path.join(corpus_dir, "test.txt")) if not s.docstart]


def test_elmo_tagger_trains_saves_loads_exports_and_freezes(corpus_dir, emb_dir, elmo_dir, tmp_path):
    import export
    import freeze
    from conftest import train_tiny
    from ner.model.tagging import tag_sentences
    from ner.serving import loaders
    from ner.serving.loaders import load_model
    model_dir = train_tiny(corpus_dir, emb_dir, str(tmp_path / "elmo"), "--set", "emb_class=elmo",
                           "--set", f"elmo_path={elmo_dir}", "--set", "lstm_units=8")
    sentences = read_test(corpus_dir)[:40]
    reference = tag_sentences(load_model(model_dir), sentences, "iob2", batch_size=16)
    export.main(["--model_dir", model_dir])
    freeze.main(["--model_dir", model_dir])
    for folder, kind in ((os.path.join(model_dir, "export"), loaders.ExportedTagger),
                         (os.path.join(model_dir, "frozen"), loaders.FrozenTagger)):
        model = load_model(folder)
        assert isinstance(model, kind)
        tagged = tag_sentences(model, sentences, "iob2", batch_size=16)
        assert [t for t, _ in tagged] == [t for t, _ in reference]
        np.testing.assert_allclose(np.concatenate([c for _, c in tagged]),
                                   np.concatenate([c for _, c in reference]), atol=1e-4)


def test_bert_and_elmo_stack_with_words_and_characters(corpus_dir, emb_dir, elmo_dir, tmp_path):
    import inference
    from conftest import train_tiny
    from ner.serving.loaders import load_checkpoint
    bert_dir = tiny.write_bert_hf(tmp_path / "bert")
    model_dir = train_tiny(corpus_dir, emb_dir, str(tmp_path / "stacked"), "--set", "emb_class=bert+elmo",
                           "--set", f"elmo_path={elmo_dir}", "--set", f"bert_path={bert_dir}", "--set", "lstm_units=8",
                           "--epochs", "1")
    model = load_checkpoint(model_dir)
    assert [c.output_dim for c in model.contextual] == [8, 12]
    assert model.encoder.forward_layers[0].kernel.shape[0] == 8 + 8 + 8 + 12 + 4 + 8  # glove, chars, bert, elmo, casing; h
    pred = tmp_path / "pred.txt"
    inference.main(["--model_dir", model_dir, "--input", os.path.join(corpus_dir, "test.txt"), "--output", str(pred)])
    assert pred.read_text(encoding="utf-8").count("\n") == open(os.path.join(corpus_dir, "test.txt")).read().count("\n")


def test_stacked_tagger_predictions_do_not_depend_on_padding(elmo_dir, tmp_path):
    """As tests/test_model.py checks for GloVe models: a sentence tags alike alone and in a padded batch."""
    from conftest import TINY_CONFIG
    from ner.config import Config
    from ner.data.vocabulary import RESERVED, Vocabulary
    from ner.model.tagger import Tagger
    words = ["john", "went", "to", "paris"]
    np.save(tmp_path / "embeddings.npy", np.random.default_rng(0).normal(size=(RESERVED + 4, 5)).astype(np.float32))
    vocab = Vocabulary(words=words, chars=sorted(set("".join(words))), entity_types=["LOC", "PER"], columns={},
                       meta={"lowercase": True, "dim": 5, "num_oov": 0}, folder=str(tmp_path))
    bert_dir = tiny.write_bert_google(tmp_path / "bert")
    tf.random.set_seed(0)
    config = Config().with_overrides(TINY_CONFIG[1::2]).replace(
        emb_class="bert+elmo", bert_path=bert_dir, elmo_path=elmo_dir, bert_layers=[0, 2], bert_max_seq_length=8)
    model = Tagger(config, vocab)
    sentence = ["John", "went", "to", "Unbelievable", "Paris", "."]
    no_features = tf.zeros([1, 6, 0], tf.string)
    alone = model.predict(tf.constant([sentence]), tf.constant([6]), no_features)
    padded = [sentence + ["Berlin", "x", "John"], ["Paris"] * 9]
    together = model.predict(tf.constant(padded), tf.constant([6, 9]), tf.zeros([2, 9, 0], tf.string))
    assert alone["tags"].numpy()[0].tolist() == together["tags"].numpy()[0, :6].tolist()
    np.testing.assert_allclose(alone["confidence"].numpy()[0], together["confidence"].numpy()[0, :6], atol=1e-4)
