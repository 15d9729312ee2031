"""Loading a trained model folder and tagging sentences in batches: the one tagging function
that inference.py, evaluation during training and later servers share."""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import input as conll
import serving
from config import Config
from embvec import load_vocabulary
from model import Tagger
from model_files import reading

BEST_CHECKPOINTS = os.path.join("checkpoints", "best")


def load_model(folder: str):
    """A model folder (its best checkpoint), its export folder or its frozen folder: each gives an
    object with `config` and `predict(words, lengths, features)` and the same predictions."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: model folder not found")
    # Recognised by any of their files, so that a missing one is reported by name.
    if any(os.path.exists(os.path.join(folder, name)) for name in ("saved_model.pb", "variables")):
        return serving.ExportedTagger(folder)
    if any(os.path.exists(os.path.join(folder, name)) for name in (serving.MANIFEST, serving.FROZEN_GRAPH)):
        return serving.load_frozen(folder)
    return load_checkpoint(folder)


def load_checkpoint(model_dir: str) -> Tagger:
    """Builds the model from the folder's config and vocabularies and restores its best checkpoint."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    model = Tagger(Config.load(os.path.join(model_dir, "config.json")), load_vocabulary(model_dir))
    folder = os.path.join(model_dir, BEST_CHECKPOINTS)
    listing = os.path.join(folder, "checkpoint")
    if not os.path.exists(listing):
        raise FileNotFoundError(f"{listing}: missing, so no best checkpoint (has training finished an epoch?)")
    with reading(listing, "checkpoint list"):
        latest = tf.train.latest_checkpoint(folder)
    if latest is None:
        raise FileNotFoundError(f"{listing}: names no checkpoint whose .index file exists")
    with reading(latest, "checkpoint"):
        tf.train.Checkpoint(model=model).restore(latest).expect_partial()
    return model


def tag_sentences(model, sentences: list[conll.Sentence], scheme: str, batch_size: int,
                  progress: bool = False) -> list[tuple[list[str], np.ndarray]]:
    """Tags each sentence (tags in `scheme`, per-token confidences). Sentences are batched
    sorted by length, so padding stays small, and the results come back in input order."""
    order = sorted(range(len(sentences)), key=lambda i: len(sentences[i]))
    dataset = conll.make_dataset([sentences[i] for i in order], model.config.feature_columns, batch_size)
    results: list = [None] * len(sentences)
    position = 0
    with tqdm(total=len(sentences), desc="tagging", unit=" sentences", disable=None if progress else True, leave=False) as bar:
        for batch in dataset:
            output = model.predict(batch["words"], batch["lengths"], batch["features"])
            tags, confidence = np.asarray(output["tags"]), np.asarray(output["confidence"])
            for row, length in enumerate(batch["lengths"].numpy()):
                predicted = [t.decode() for t in tags[row, :length]]
                predicted = conll.convert_tags(predicted, "iob2", scheme)
                results[order[position]] = (predicted, confidence[row, :length])
                position += 1
            bar.update(len(tags))
    return results


def describe(words, tags: list[str], confidence, scheme: str, text: str | None = None,
             offsets: list[tuple[int, int]] | None = None) -> dict:
    """One tagged sentence as a JSON object: tokens, tags, confidences and entity spans, each with
    its type, tokens [token_start, token_end) and confidence (its least confident token). Given the
    raw text and each token's character offsets, entities also get character start and end."""
    entities = []
    for kind, start, end in conll.chunk_spans(tags, scheme):
        entity = {"type": kind, "text": " ".join(words[start:end]), "token_start": start, "token_end": end,
                  "confidence": round(float(min(confidence[start:end])), 4)}
        if offsets is not None:
            entity.update(text=text[offsets[start][0]:offsets[end - 1][1]], start=offsets[start][0],
                          end=offsets[end - 1][1])
        entities.append(entity)
    result = {"tokens": list(words), "tags": list(tags), "confidences": [round(float(c), 4) for c in confidence],
              "entities": entities}
    return result if text is None else {"text": text, **result}
