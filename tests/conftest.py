"""Shared fixtures: a tiny synthetic corpus, a tiny GloVe text file, and a model trained on them."""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from ner.config import ENCODERS

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Frozen folders run in a TensorFlow session whether or not build/cc holds a library; the tests of
# the library (test_cc.py) build their own and point NER_TAGGER_LIB at it.
os.environ["NER_TAGGER_LIB"] = ""

# Small enough to train in seconds; big enough to learn something.
TINY_CONFIG = ["--set", "lstm_units=16", "--set", "char_filters=8", "--set", "char_dim=8", "--set", "casing_dim=4",
               "--set", "feature_dim=4", "--set", "batch_size=16",
               "--set", "learning_rate=0.01", "--set", "eval_batch_size=64",
               # The other encoders' sizes, used with --set encoder=...
               "--set", "transformer_units=16", "--set", "transformer_heads=2", "--set", "transformer_ffn_units=32",
               "--set", "transformer_layers=1", "--set", "qrnn_units=16", "--set", "qrnn_layers=1",
               "--set", "mha_heads=2"]

# Every encoder, plus the transformer's TENER variant and the gated, narrowed bilstm+mha, as config assignments.
ENCODER_VARIANTS = {encoder: [f"encoder={encoder}"] for encoder in ENCODERS}
ENCODER_VARIANTS["transformer-relative"] = ["encoder=transformer", "transformer_positions=relative",
                                            "transformer_scaled_attention=false"]
ENCODER_VARIANTS["bilstm+transformer-relative"] = ["encoder=bilstm+transformer", "transformer_positions=relative"]
ENCODER_VARIANTS["bilstm+mha-gated-narrow"] = ["encoder=bilstm+mha", "mha_norm=none", "mha_gate=true", "mha_units=8"]


def config_from(args: list[str]):
    """Config() with train.py-style arguments applied: --set KEY=VALUE, --seed N, --epochs N."""
    from ner.training.run import make_config
    overrides, seed, epochs = [], None, None
    for flag, value in zip(args[::2], args[1::2]):
        if flag == "--set":
            overrides.append(value)
        elif flag == "--seed":
            seed = int(value)
        elif flag == "--epochs":
            epochs = int(value)
        else:
            raise ValueError(f"config_from: {flag} is not a config argument")
    return make_config("", False, overrides=overrides, seed=seed, epochs=epochs)


def folder_state(*folders) -> dict:
    """Every file (its SHA-256) and every folder below `folders`, by path: to assert that a command
    changed nothing."""
    found = {}
    for folder in folders:
        for parent, subfolders, names in os.walk(folder):
            for name in subfolders:
                found[os.path.join(parent, name)] = "folder"
            for name in names:
                with open(os.path.join(parent, name), "rb") as f:
                    found[os.path.join(parent, name)] = hashlib.sha256(f.read()).hexdigest()
    return found


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    subprocess.run([sys.executable, os.path.join(ROOT, "data", "make_sample.py"), "--out", str(out),
                    "--train", "200", "--dev", "60", "--test", "60"], check=True)
    return str(out)


def write_glove(path, words, dim=8, seed=0):
    """A GloVe-format text file with seeded random vectors."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as f:
        for word in words:
            f.write(word + " " + " ".join(f"{x:.5f}" for x in rng.normal(size=dim)) + "\n")


@pytest.fixture(scope="session")
def emb_dir(corpus_dir, tmp_path_factory):
    from ner.data.conll import read_conll
    from ner.data.pretrained import build
    words = sorted({w.lower() for s in read_conll(os.path.join(corpus_dir, "train.txt")) for w in s.words})
    folder = tmp_path_factory.mktemp("emb")
    glove = str(folder / "glove.txt")
    write_glove(glove, words[: len(words) * 3 // 4])  # a quarter of train words stay out-of-vocabulary
    build(corpus_dir, glove, str(folder / "vocab"))
    return str(folder / "vocab")


def train_tiny(corpus_dir, emb_dir, folder, *overrides):
    import train
    train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", folder, "--epochs", "3",
                "--seed", "7"] + TINY_CONFIG + list(overrides))
    return folder


@pytest.fixture(scope="session")
def model_dir(corpus_dir, emb_dir, tmp_path_factory):
    """Words only, so it can tag raw text."""
    return train_tiny(corpus_dir, emb_dir, str(tmp_path_factory.mktemp("runs") / "tiny"))


@pytest.fixture(scope="session")
def feature_model_dir(corpus_dir, emb_dir, tmp_path_factory):
    """Also reads the POS and chunk columns."""
    return train_tiny(corpus_dir, emb_dir, str(tmp_path_factory.mktemp("runs") / "tiny_features"),
                      "--set", "feature_columns=[1, 2]")


@pytest.fixture(scope="session")
def document_model_dir(corpus_dir, emb_dir, tmp_path_factory):
    """A tiny BERT model that reads each sentence beside the nearest words of its document, trained
    once per test run. Its BERT vocabulary holds the corpus's words, a piece each, so that most
    sentences leave room for context in their 16-piece window."""
    import tiny_contextual as tiny

    from ner.data.conll import read_conll
    folder = tmp_path_factory.mktemp("document_model")
    words = sorted({word.lower() for split in ("train", "dev", "test")
                    for s in read_conll(os.path.join(corpus_dir, f"{split}.txt")) if not s.docstart for word in s.words})
    vocab = tiny.BERT_VOCAB + [word for word in words if word not in tiny.BERT_VOCAB]
    bert = tiny.write_bert_hf(folder / "bert", tiny.bert_weights(seed=3, vocab_size=len(vocab)), vocab=vocab)
    return train_tiny(corpus_dir, emb_dir, str(folder / "model"), "--set", "emb_class=bert", "--set", f"bert_path={bert}",
                      "--set", "bert_context=document", "--set", "bert_max_seq_length=16")


def documents_as_text(corpus_file: str) -> list[list[str]]:
    """The documents of a CoNLL file as raw text: per document, a line per sentence."""
    documents = []
    from ner.data.conll import read_conll
    for sentence in read_conll(corpus_file):
        if sentence.docstart or not documents:
            documents.append([])
        if not sentence.docstart:
            documents[-1].append(" ".join(sentence.words))
    return [document for document in documents if document]


@pytest.fixture(scope="session")
def frozen_dir(model_dir, tmp_path_factory):
    import freeze
    out = str(tmp_path_factory.mktemp("frozen") / "tiny")
    freeze.main(["--model_dir", model_dir, "--out", out])
    return out


@pytest.fixture(scope="session")
def frozen_feature_dir(feature_model_dir, tmp_path_factory):
    import freeze
    out = str(tmp_path_factory.mktemp("frozen") / "tiny_features")
    freeze.main(["--model_dir", feature_model_dir, "--out", out])
    return out
