"""Loading any form of a model folder for tagging: the folder itself (its best checkpoint), its
export/ (SavedModel) or its frozen/ (GraphDef, run on the C++ runner's library when there is one,
else in a TensorFlow session). Each gives an object with `config` and `predict(words, lengths,
features)` -> {"tags": IOB2 [B, T], "confidence": [B, T]}, and the same predictions."""
from __future__ import annotations

import json
import os

import numpy as np
import tensorflow as tf

from ner import model_folder
from ner.config import Config
from ner.data.vocabulary import load_vocabulary
from ner.model.tagger import Tagger
from ner.model_folder import reading
from ner.serving.native import NATIVE_LIBRARY_ENV, CTagger, TaggerError, native_library
from ner.serving.numpy_head import NumpyHead


def load_model(folder: str):
    """A model folder (its best checkpoint), its export folder or its frozen folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: model folder not found")
    if model_folder.is_export(folder):
        return ExportedTagger(folder)
    if model_folder.is_frozen(folder):
        return load_frozen(folder)
    return load_checkpoint(folder)


def load_checkpoint(model_dir: str) -> Tagger:
    """Builds the model from the folder's config and vocabularies and restores its best checkpoint."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    model = Tagger(Config.load(os.path.join(model_dir, model_folder.CONFIG)), load_vocabulary(model_dir))
    folder = os.path.join(model_dir, model_folder.BEST_CHECKPOINTS)
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


class ExportedTagger:
    """An export folder, with the predict(words, lengths, features) and config of model.Tagger."""

    def __init__(self, folder: str):
        self.config = Config.load(os.path.join(folder, model_folder.CONFIG))
        for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
            if not os.path.exists(os.path.join(folder, name)):
                raise FileNotFoundError(f"{os.path.join(folder, name)}: missing (the export folder is incomplete)")
        with reading(folder, "SavedModel (saved_model.pb, variables/)"):
            self._saved = tf.saved_model.load(folder)  # owns the variables the signature reads
            self._signature = self._saved.signatures[model_folder.SIGNATURE]

    def predict(self, words, lengths, features):
        if self.config.feature_columns:
            return self._signature(words=words, lengths=lengths, features=features)
        return self._signature(words=words, lengths=lengths)


# The C++ runner's library (inference/cc; `make serving` builds it), which frozen folders run on

def load_frozen(folder: str, threads: int = 0):
    """A frozen folder on the C++ runner's library when there is one (NativeFrozenTagger: two
    thirds of the session's time per sentence), else in a TensorFlow session (FrozenTagger)."""
    library = native_library()
    return NativeFrozenTagger(folder, library, threads) if library else FrozenTagger(folder, threads)


def _read_frozen(folder: str) -> tuple:
    """-> (config, manifest, graph as a tf.Graph) of a frozen folder; an error names a file that
    is missing or malformed."""
    config = Config.load(os.path.join(folder, model_folder.CONFIG))
    with reading(os.path.join(folder, model_folder.MANIFEST), "serving manifest"):
        with open(os.path.join(folder, model_folder.MANIFEST), encoding="utf-8") as f:
            manifest = json.load(f)
        graph_path = os.path.join(folder, manifest["graph"])
    graph_def = tf.compat.v1.GraphDef()
    graph = tf.Graph()
    with reading(graph_path, "frozen graph"), graph.as_default():
        with open(graph_path, "rb") as f:
            graph_def.ParseFromString(f.read())
        tf.graph_util.import_graph_def(graph_def, name="")
    return config, manifest, graph


class NativeFrozenTagger:
    """A frozen folder run by the C++ runner's library through ctypes (ner/serving/native.py), with the
    predict(words, lengths, features) of FrozenTagger: the same tags, from the same graph and
    the same native head as build/cc/tagger."""

    def __init__(self, folder: str, library: str, threads: int = 0):
        """threads: as FrozenTagger's. The folder is checked here first (_read_frozen), so that a
        damaged file gets the same error naming it as from FrozenTagger."""
        self.config, _, _ = _read_frozen(folder)
        try:
            self._tagger = CTagger(library, folder, threads)
        except (OSError, TaggerError) as e:
            raise ValueError(f"{folder}: the C++ runner's library {library} cannot run it: {e} "
                             f"(set {NATIVE_LIBRARY_ENV}= to run frozen folders in TensorFlow instead)") from None
        self._takes_features = self._tagger.num_feature_columns > 0

    def predict(self, words, lengths, features):
        words, lengths = np.asarray(words), np.asarray(lengths)
        present = [b for b, length in enumerate(lengths) if length > 0]  # the C API takes no empty sentence
        tags = np.full(words.shape, b"", dtype=object)
        confidence = np.zeros(words.shape, np.float32)
        if present:
            sentences = [words[b, :lengths[b]].tolist() for b in present]
            values = [np.asarray(features)[b, :lengths[b]].tolist() for b in present] if self._takes_features else None
            for b, (sentence_tags, sentence_confidences) in zip(present, self._tagger.tag(sentences, values)):
                tags[b, :lengths[b]] = [tag.encode() for tag in sentence_tags]
                confidence[b, :lengths[b]] = sentence_confidences
        return {"tags": tags, "confidence": confidence}


class FrozenTagger:
    """A frozen folder run in a TF1 session, the way the C++ runner runs it: when serving.json
    describes the head, the session stops at the emission scores and numpy_head decodes them."""

    def __init__(self, folder: str, threads: int = 0):
        """threads: intra- and inter-op threads (0: TensorFlow's default); 1 runs every op in the
        caller's thread (a negative inter-op count), which saves a hand-off per op."""
        self.config, manifest, graph = _read_frozen(folder)
        session_config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                                  inter_op_parallelism_threads=-1 if threads == 1 else threads)
        self._session = tf.compat.v1.Session(graph=graph, config=session_config)
        self._session.run(manifest["init_op"])
        inputs = manifest["inputs"]
        self._takes_features = "features" in inputs
        feeds = [inputs["words"], inputs["lengths"]] + ([inputs["features"]] if self._takes_features else [])
        self.graph = graph
        self.outputs = manifest["outputs"]
        self._feeds = feeds
        self._head = NumpyHead(manifest["head"]) if "head" in manifest else None
        fetches = [self.outputs["emissions"]] if self._head else [self.outputs["tags"], self.outputs["confidence"]]
        self._run = self._session.make_callable(fetches, feeds)

    def _inputs(self, words, lengths, features) -> list:
        return [np.asarray(a) for a in [words, lengths] + ([features] if self._takes_features else [])]

    def predict(self, words, lengths, features):
        outputs = self._run(*self._inputs(words, lengths, features))
        if self._head:
            return self._head.predict(outputs[0], np.asarray(lengths))
        return {"tags": outputs[0], "confidence": outputs[1]}

    def runner(self, fetches: list):
        """A function (words, lengths, features) -> the values of any tensors of the graph (profiling)."""
        run = self._session.make_callable(fetches, self._feeds)
        return lambda words, lengths, features: run(*self._inputs(words, lengths, features))
