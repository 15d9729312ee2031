"""Loading any form of a model folder for tagging: the folder itself (its best checkpoint), its
export/ (SavedModel) or its frozen/ (GraphDef, run on the C++ runner's library when there is one,
else in a TensorFlow session). Each gives an object with `config` and `predict(words, lengths,
features, left_context=None, right_context=None)` -> {"tags": IOB2 [B, T], "confidence": [B, T]}
(the context only for models that read document context; None: each sentence its own document),
and the same predictions, and
`tokenize(texts)` -> each raw text's (token, start, end), from the same tokenizer graph. Each
checks the folder's integrity manifest (ner/integrity.py) before it reads any other file of it."""
from __future__ import annotations

import os
import re

import numpy as np

from ner import integrity, model_folder
from ner.config import Config
from ner.data.batching import no_context
from ner.model_folder import reading
from ner.serving.manifest import TOKENIZER_OUTPUTS, file_inside, read_frozen_files, read_manifest
from ner.serving.native import NATIVE_LIBRARY_ENV, CTagger, TaggerError, native_library
from ner.serving.numpy_head import NumpyHead


def load_model(folder: str):
    """A model folder (its best checkpoint), its export folder, its frozen folder or its ONNX folder."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: model folder not found")
    if model_folder.is_onnx(folder):  # before is_frozen: an ONNX folder holds a serving.json too
        from ner.serving.onnx_tagger import OnnxTagger  # ONNX Runtime, never TensorFlow
        return OnnxTagger(folder)
    if model_folder.is_export(folder):
        return ExportedTagger(folder)
    if model_folder.is_frozen(folder):
        return load_frozen(folder)
    return load_checkpoint(folder)


def load_checkpoint(model_dir: str):
    """Builds the model (a Tagger) from the folder's config and vocabularies and restores its best
    checkpoint."""
    from ner.data.vocabulary import load_vocabulary
    from ner.model.tagger import Tagger
    from ner.training.checkpoints import restore_best
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    integrity.verify(model_dir, "train.py")
    model = Tagger(Config.load(os.path.join(model_dir, model_folder.CONFIG)), load_vocabulary(model_dir))
    restore_best(model, model_dir)
    return model


class ExportedTagger:
    """An export folder, with the predict(words, lengths, features) and config of model.Tagger."""

    def __init__(self, folder: str):
        integrity.verify(folder, "export.py")
        self.config = Config.load(os.path.join(folder, model_folder.CONFIG))
        for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
            if not os.path.exists(os.path.join(folder, name)):
                raise FileNotFoundError(f"{os.path.join(folder, name)}: missing (the export folder is incomplete)")
        import tensorflow as tf

        from ner import op_libraries
        self._manifest_path = file_inside(folder, model_folder.MANIFEST, "serving manifest")
        op_libraries.load_all(read_manifest(self._manifest_path).get("op_libraries", []))
        with reading(folder, "SavedModel (saved_model.pb, variables/)"):
            self._saved = tf.saved_model.load(folder)  # owns the variables the signature reads
            self._signature = self._saved.signatures[model_folder.SIGNATURE]
            self._tokenizer = self._saved.signatures.get(model_folder.TOKENIZER_SIGNATURE)

    def predict(self, words, lengths, features, left_context=None, right_context=None):
        inputs = {"words": words, "lengths": lengths}
        if self.config.feature_columns:
            inputs["features"] = features
        if self.config.context_words:
            inputs.update(context_inputs(lengths, left_context, right_context))
        return self._signature(**inputs)

    def tokenize(self, texts):
        from ner.data.tokenizer import tokenized
        if self._tokenizer is None:
            raise no_tokenizer(self._manifest_path)
        return tokenized(lambda text: self._tokenizer(text=text), texts)


def context_inputs(lengths, left_context, right_context) -> dict:
    """The context a document-context model is fed: the one given, else none (each sentence its own document)."""
    if left_context is None or right_context is None:
        return no_context(np.shape(lengths)[0])
    return {"left_context": left_context, "right_context": right_context}


def no_tokenizer(manifest_path: str) -> ValueError:
    return ValueError(f'{manifest_path}: has no "tokenizer": the folder was written before raw text was tokenized '
                      "inside the graph; write it again with export.py or freeze.py to tag raw text")


# The C++ runner's library (inference/cc; `make serving` builds it), which frozen folders run on

def load_frozen(folder: str, threads: int = 0):
    """A frozen folder on the C++ runner's library when there is one (NativeFrozenTagger: two
    thirds of the session's time per sentence), else in a TensorFlow session (FrozenTagger)."""
    library = native_library()
    return NativeFrozenTagger(folder, library, threads) if library else FrozenTagger(folder, threads)


# The dtype of each tensor serving.json names, as tagging feeds or reads it.
INPUT_DTYPES = {"words": "string", "lengths": "int32", "features": "string", "left_context": "string",
                "right_context": "string"}
OUTPUT_DTYPES = {"tags": "string", "confidence": "float32", "emissions": "float32"}
TOKENIZER_DTYPES = {"text": "string", "tokens": "string", "lengths": "int32", "starts": "int32", "ends": "int32"}


def _tensor(graph, name: str, dtype: str, path: str, what: str):
    """The tensor that serving.json names "operation:index"; `what` says where, e.g. '"words" in "inputs"'."""
    operation_name, colon, index = name.rpartition(":")
    if not colon or not re.fullmatch("[0-9]{1,9}", index):
        raise ValueError(f'{path}: expected {what} to name a tensor as "operation:index", found "{name}"')
    try:
        operation = graph.get_operation_by_name(operation_name)
    except (KeyError, ValueError):
        operation = None
    if operation is None or int(index) >= len(operation.outputs):
        raise ValueError(f"{path}: expected the graph to have a tensor {name} ({what})")
    tensor = operation.outputs[int(index)]
    if tensor.dtype.name != dtype:
        raise ValueError(f"{path}: expected {name} ({what}) to have dtype {dtype}")
    return tensor


def _emissions_mismatch(path: str, name: str, num_tags: int, dims) -> ValueError:
    """dims: the emissions' shape, None where unknown."""
    shape = ", ".join("?" if d is None else str(d) for d in dims)
    return ValueError(f"{path}: expected the graph's emissions {name} to be scores [batch, time, {num_tags}] "
                      f"for the head's {num_tags} tags, found shape [{shape}]")


def _check_graph(graph, manifest: dict, path: str) -> None:
    """The init op and the tensors serving.json names, in tagger.cc's order; the emission scores are
    as wide as the head has tags wherever the graph's static shape says so (tagging checks the rest)."""
    init_op = manifest["init_op"]
    try:
        graph.get_operation_by_name(init_op)
    except (KeyError, ValueError):
        raise ValueError(f'{path}: expected the graph to have an operation {init_op} ("init_op")') from None
    if "tokenizer" in manifest:
        tensors = {**manifest["tokenizer"]["inputs"], **manifest["tokenizer"]["outputs"]}
        for key in ("text", *TOKENIZER_OUTPUTS):
            where = "inputs" if key == "text" else "outputs"
            _tensor(graph, tensors[key], TOKENIZER_DTYPES[key], path, f'"{key}" in "tokenizer" "{where}"')
    inputs, outputs = manifest["inputs"], manifest["outputs"]
    for key in INPUT_DTYPES:
        if key in inputs:
            _tensor(graph, inputs[key], INPUT_DTYPES[key], path, f'"{key}" in "inputs"')
    if "head" not in manifest:
        for key in ("tags", "confidence"):
            _tensor(graph, outputs[key], OUTPUT_DTYPES[key], path, f'"{key}" in "outputs"')
        return
    emissions = _tensor(graph, outputs["emissions"], OUTPUT_DTYPES["emissions"], path, '"emissions" in "outputs"')
    num_tags = len(manifest["head"]["tags"])
    if emissions.shape.rank is not None and (emissions.shape.rank != 3 or emissions.shape[2] not in (None, num_tags)):
        raise _emissions_mismatch(path, outputs["emissions"], num_tags, emissions.shape.as_list())


def _read_frozen(folder: str) -> tuple:
    """-> (config, manifest, graph as a tf.Graph) of a frozen folder; an error names a file that
    is missing or malformed."""
    import tensorflow as tf

    from ner import op_libraries
    integrity.verify(folder, "freeze.py")
    config, manifest, manifest_path, graph_path = read_frozen_files(folder)
    op_libraries.load_all(manifest.get("op_libraries", []))  # before the graph that runs their ops
    graph_def = tf.compat.v1.GraphDef()
    graph = tf.Graph()
    with reading(graph_path, "frozen graph"), graph.as_default():
        with open(graph_path, "rb") as f:
            graph_def.ParseFromString(f.read())
        tf.graph_util.import_graph_def(graph_def, name="")
    _check_graph(graph, manifest, manifest_path)
    return config, manifest, graph


class NativeFrozenTagger:
    """A frozen folder run by the C++ runner's library through ctypes (ner/serving/native.py), with the
    predict(words, lengths, features, left_context, right_context) of FrozenTagger: the same tags,
    from the same graph and the same native head as build/cc/tagger."""

    def __init__(self, folder: str, library: str, threads: int = 0):
        """threads: as FrozenTagger's. The library checks the folder's integrity manifest and its
        serving.json with FrozenTagger's messages (and warns where it has none), then the files
        that only Python reads are checked here: no TensorFlow is loaded in Python."""
        try:
            self._tagger = CTagger(library, folder, threads)
        except TaggerError as e:
            if str(e).startswith(folder):  # a file of the folder that the library refused, named
                raise ValueError(str(e)) from None
            raise ValueError(f"{folder}: the C++ runner's library {library} cannot run it: {e} "
                             f"(set {NATIVE_LIBRARY_ENV}= to run frozen folders in TensorFlow instead)") from None
        except OSError as e:
            raise ValueError(f"{folder}: the C++ runner's library {library} cannot be loaded: {e} "
                             f"(set {NATIVE_LIBRARY_ENV}= to run frozen folders in TensorFlow instead)") from None
        self.config, _, _, _ = read_frozen_files(folder)
        self._takes_features = self._tagger.num_feature_columns > 0
        self._takes_context = self._tagger.context_words > 0

    def predict(self, words, lengths, features, left_context=None, right_context=None):
        """left_context, right_context: [B, C] words, '' padding after them, as FrozenTagger takes
        them (None: each sentence alone); read only by a model that reads document context."""
        words, lengths = np.asarray(words), np.asarray(lengths)
        present = [b for b, length in enumerate(lengths) if length > 0]  # the C API takes no empty sentence
        tags = np.full(words.shape, b"", dtype=object)
        confidence = np.zeros(words.shape, np.float32)
        if present:
            sentences = [words[b, :lengths[b]].tolist() for b in present]
            values = [np.asarray(features)[b, :lengths[b]].tolist() for b in present] if self._takes_features else None
            contexts = None
            if self._takes_context and left_context is not None and right_context is not None:
                sides = np.asarray(left_context), np.asarray(right_context)
                contexts = [tuple([w for w in side[b].tolist() if w not in ("", b"")] for side in sides) for b in present]
            for b, (sentence_tags, sentence_confidences) in zip(present, self._tagger.tag(sentences, values, contexts)):
                tags[b, :lengths[b]] = [tag.encode() for tag in sentence_tags]
                confidence[b, :lengths[b]] = sentence_confidences
        return {"tags": tags, "confidence": confidence}

    def tokenize(self, texts):
        """Each raw text's (token, start, end), from the folder's tokenizer graph run by the library
        (the same message as FrozenTagger's for a folder without one)."""
        try:
            return self._tagger.tokenize(texts)
        except TaggerError as e:
            raise ValueError(str(e)) from None


class FrozenTagger:
    """A frozen folder run in a TF1 session, the way the C++ runner runs it: when serving.json
    describes the head, the session stops at the emission scores and numpy_head decodes them."""

    def __init__(self, folder: str, threads: int = 0):
        """threads: intra- and inter-op threads (0: TensorFlow's default); 1 runs every op in the
        caller's thread (a negative inter-op count), which saves a hand-off per op."""
        import tensorflow as tf
        self.config, manifest, graph = _read_frozen(folder)
        session_config = tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                                  inter_op_parallelism_threads=-1 if threads == 1 else threads)
        self._session = tf.compat.v1.Session(graph=graph, config=session_config)
        self._session.run(manifest["init_op"])
        inputs = manifest["inputs"]
        self._takes_features = "features" in inputs
        self._takes_context = "left_context" in inputs
        feeds = [inputs[key] for key in INPUT_DTYPES if key in inputs]
        self.graph = graph
        self.outputs = manifest["outputs"]
        self._feeds = feeds
        self._head = NumpyHead(manifest["head"]) if "head" in manifest else None
        self._num_tags = len(manifest["head"]["tags"]) if self._head else 0
        self._manifest_path = os.path.join(folder, model_folder.MANIFEST)  # named when the emissions do not fit the head
        fetches = [self.outputs["emissions"]] if self._head else [self.outputs["tags"], self.outputs["confidence"]]
        self._run = self._session.make_callable(fetches, feeds)
        tokenizer = manifest.get("tokenizer")
        self._tokenize = None if tokenizer is None else self._session.make_callable(
            [tokenizer["outputs"][key] for key in TOKENIZER_OUTPUTS], [tokenizer["inputs"]["text"]])

    def tokenize(self, texts):
        from ner.data.tokenizer import tokenized
        if self._tokenize is None:
            raise no_tokenizer(self._manifest_path)
        return tokenized(lambda text: dict(zip(TOKENIZER_OUTPUTS, self._tokenize(text))), texts)

    def _inputs(self, words, lengths, features, left_context=None, right_context=None) -> list:
        inputs = [words, lengths] + ([features] if self._takes_features else [])
        if self._takes_context:
            inputs += context_inputs(lengths, left_context, right_context).values()
        return [np.asarray(a) for a in inputs]

    def predict(self, words, lengths, features, left_context=None, right_context=None):
        outputs = self._run(*self._inputs(words, lengths, features, left_context, right_context))
        if self._head:
            # The graph's static shape may leave the width open (_check_graph): numpy_head would index past its tags.
            if outputs[0].shape != (*np.shape(words), self._num_tags):
                raise _emissions_mismatch(self._manifest_path, self.outputs["emissions"], self._num_tags, outputs[0].shape)
            return self._head.predict(outputs[0], np.asarray(lengths))
        return {"tags": outputs[0], "confidence": outputs[1]}

    def runner(self, fetches: list):
        """A function (words, lengths, features) -> the values of any tensors of the graph (profiling)."""
        run = self._session.make_callable(fetches, self._feeds)
        return lambda words, lengths, features: run(*self._inputs(words, lengths, features))
