"""Every encoder, alone and inside a full Tagger with either head: a sentence's outputs do not
depend on the rest of the batch, the padded width, or what the padded positions hold."""
import numpy as np
import pytest
import tensorflow as tf

from conftest import ENCODER_VARIANTS, TINY_CONFIG
from ner.config import Config
from ner.data.vocabulary import RESERVED, Vocabulary
from ner.model.encoders.build import build_encoder
from ner.model.tagger import Tagger

WORDS = ["john", "went", "to", "paris", "the", "berlin"]
POS = ["NNP", "VBD", "TO", "DT"]


def tiny_config(variant: str, **changes) -> Config:
    return Config().with_overrides(TINY_CONFIG[1::2] + ENCODER_VARIANTS[variant]).replace(**changes)


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vocab")
    dim = 6
    embeddings = np.random.default_rng(0).normal(size=(RESERVED + len(WORDS), dim)).astype(np.float32)
    embeddings[-1] = 0  # "berlin" is a train-only word with a trained vector
    np.save(folder / "embeddings.npy", embeddings, allow_pickle=False)
    return Vocabulary(words=WORDS, chars=sorted(set("".join(WORDS))), entity_types=["LOC", "PER"],
                      columns={1: POS}, meta={"lowercase": True, "dim": dim, "num_oov": 1}, folder=str(folder))


@pytest.mark.parametrize("encoder", ENCODER_VARIANTS)
def test_encoder_output_does_not_depend_on_padding_in_a_tf_function(encoder):
    tf.random.set_seed(0)
    layer = build_encoder(tiny_config(encoder, lstm_layers=2, transformer_layers=2, qrnn_layers=2), input_dim=6)
    encode = tf.function(lambda x, lengths: layer(x, lengths, training=False),
                         input_signature=[tf.TensorSpec([None, None, 6]), tf.TensorSpec([None], tf.int32)])
    sentence = tf.random.normal([1, 4, 6])
    alone = encode(sentence, tf.constant([4]))
    garbage = tf.random.normal([2, 9, 6]) * 10
    batch = tf.concat([tf.concat([sentence, garbage[:1, :5]], axis=1), garbage[1:]], axis=0)
    together = encode(batch, tf.constant([4, 9]))
    assert alone.shape[-1] == together.shape[-1] == layer.output_dim
    np.testing.assert_allclose(alone.numpy()[0], together.numpy()[0, :4], atol=1e-5)


@pytest.mark.parametrize("use_crf", [True, False], ids=["crf", "softmax"])
@pytest.mark.parametrize("encoder", ENCODER_VARIANTS)
def test_tagger_predictions_do_not_depend_on_padding(vocab, encoder, use_crf):
    tf.random.set_seed(0)
    tagger = Tagger(tiny_config(encoder, use_crf=use_crf, feature_columns=[1], highway_layers=1), vocab)
    words = ["John", "went", "to", "Berlin"]
    pos = ["NNP", "VBD", "TO", "NNP"]
    alone = tagger.predict(tf.constant([words]), tf.constant([4]), tf.constant([[[p] for p in pos]]))
    # Row 0 continues with real-looking words past its length; row 1 is longer.
    rng = np.random.default_rng(1)
    padded_words = [words + list(rng.choice(WORDS + ["Unseen"], 3)), list(rng.choice(WORDS, 7))]
    padded_pos = [pos + list(rng.choice(POS, 3)), list(rng.choice(POS, 7))]
    batch = tagger.predict(tf.constant(padded_words), tf.constant([4, 7]),
                           tf.constant([[[p] for p in row] for row in padded_pos]))
    assert alone["tags"].numpy()[0].tolist() == batch["tags"].numpy()[0, :4].tolist()
    np.testing.assert_allclose(alone["confidence"].numpy()[0], batch["confidence"].numpy()[0, :4], atol=1e-4)


def test_word_dropout_reads_words_as_unknown_only_in_training(vocab):
    tf.random.set_seed(0)
    tagger = Tagger(tiny_config("bilstm", dropout=0.0, word_dropout=0.999), vocab)
    words, lengths = tf.constant([["John", "went", "to", "Paris"]]), tf.constant([4])
    no_features = tf.zeros([1, 4, 0], tf.string)
    dropped = tagger.emissions(words, lengths, no_features, training=True)
    as_read = tagger.emissions(words, lengths, no_features, training=False)
    assert not np.allclose(dropped.numpy(), as_read.numpy())
    # Give every word the unknown word's vector: evaluation then sees what training saw.
    table = tagger.word_embedding.pretrained
    table.assign(tf.repeat(table[1:2], table.shape[0], axis=0))
    as_unknown = tagger.emissions(words, lengths, no_features, training=False)
    np.testing.assert_allclose(dropped.numpy(), as_unknown.numpy(), atol=1e-6)
