"""The generic train-save-load-predict test, and batching/seed behaviour of the model."""
import json
import os

import numpy as np
import pytest

from conftest import ENCODER_VARIANTS, TINY_CONFIG, config_from
from ner.data.conll import read_conll
from ner.model.tagging import tag_sentences
from ner.serving.loaders import load_model
from ner.training.run import make_trainer


def read(corpus_dir, split):
    return [s for s in read_conll(os.path.join(corpus_dir, f"{split}.txt")) if not s.docstart]


@pytest.mark.parametrize("encoder", ENCODER_VARIANTS)
def test_train_save_load_predict_gives_identical_predictions(corpus_dir, emb_dir, tmp_path, encoder):
    model_dir = str(tmp_path / "m")
    config = config_from(["--epochs", "1", "--set", "feature_columns=[1, 2]"] + TINY_CONFIG
                         + [arg for assignment in ENCODER_VARIANTS[encoder] for arg in ("--set", assignment)])
    trainer = make_trainer(config, emb_dir, model_dir)
    trainer.fit(read(corpus_dir, "train"), read(corpus_dir, "dev"), "iob2")
    test = read(corpus_dir, "test")
    before = tag_sentences(trainer.model, test, "iob2", batch_size=32)
    after = tag_sentences(load_model(model_dir), test, "iob2", batch_size=32)
    assert [tags for tags, _ in before] == [tags for tags, _ in after]
    np.testing.assert_array_equal(np.concatenate([c for _, c in before]), np.concatenate([c for _, c in after]))
    assert {"config.json", "words.txt", "chars.txt", "entity_types.txt", "embeddings.npy", "meta.json",
            "history.jsonl"} <= set(os.listdir(model_dir))


def test_batched_predictions_equal_single_sentence_predictions(feature_model_dir, corpus_dir):
    model = load_model(feature_model_dir)
    sentences = read(corpus_dir, "dev")[:40]
    batched = tag_sentences(model, sentences, "iob2", batch_size=64)
    for sentence, (tags, confidence) in zip(sentences, batched):
        single_tags, single_confidence = tag_sentences(model, [sentence], "iob2", batch_size=1)[0]
        assert single_tags == tags
        np.testing.assert_allclose(single_confidence, confidence, atol=1e-4)  # matmul kernels vary with batch size


def test_trained_model_beats_chance_and_writes_history(model_dir):
    history = [json.loads(line) for line in open(os.path.join(model_dir, "history.jsonl"))]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[-1]["loss"] < history[0]["loss"]
    assert max(h["dev_token_f1"] for h in history) > 10.0  # tagging everything O scores 0


def test_same_seed_gives_same_model(corpus_dir, emb_dir, tmp_path):
    sentences = read(corpus_dir, "train")[:48]
    weights = []
    for run in ("a", "b"):
        config = config_from(["--epochs", "1", "--seed", "3"] + TINY_CONFIG)
        trainer = make_trainer(config, emb_dir, str(tmp_path / run))
        trainer.fit(sentences, sentences[:8], "iob2")
        weights.append([v.numpy() for v in trainer.model.trainable_variables])
    for a, b in zip(*weights):
        np.testing.assert_array_equal(a, b)
