"""Loading any form of a model folder for tagging: the folder itself (its best checkpoint), its
export/ (SavedModel) or its frozen/ (GraphDef, run on the C++ runner's library when there is one,
else in a TensorFlow session). Each gives an object with `config` and `predict(words, lengths,
features)` -> {"tags": IOB2 [B, T], "confidence": [B, T]}, and the same predictions."""
from __future__ import annotations

import json
import math
import os
import re

import numpy as np
import tensorflow as tf

from ner import model_folder
from ner.config import Config
from ner.data.vocabulary import load_vocabulary
from ner.model.tagger import Tagger
from ner.model_folder import reading
from ner.serving.native import NATIVE_LIBRARY_ENV, CTagger, TaggerError, native_library
from ner.serving.numpy_head import NumpyHead
from ner.training.checkpoints import restore_best


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
    restore_best(model, model_dir)
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


# A frozen folder's serving.json is checked whole when the folder is loaded, by the rules of the
# C++ runner's library (inference/cc/tagger.cc), which refuses the same manifests with the same
# messages: it and the graph it names are files inside the folder, each value has the type and
# size that tagging relies on, and each tensor it names exists with the dtype tagging feeds or reads.
MAX_MANIFEST_BYTES = 1 << 20      # tagger.cc's kMaxManifestBytes
MAX_MANIFEST_DEPTH = 64           # containers nested in one another: tagger.cc's kMaxManifestDepth
MAX_FEATURE_COLUMN = 2**31 - 2    # the C API's column numbers are ints, and its runner counts column + 1 fields
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the heads' scores become float32s
INPUT_DTYPES = {"words": tf.string, "lengths": tf.int32, "features": tf.string}
OUTPUT_DTYPES = {"tags": tf.string, "confidence": tf.float32, "emissions": tf.float32}


def _file_inside(folder: str, name: str, what: str) -> str:
    """folder/name, checked to be a regular file whose real path lies inside the folder's, so that
    neither a name nor a link in a model folder leads out of it."""
    path = os.path.join(folder, name)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: {what} missing")
    real, real_folder = os.path.realpath(path), os.path.realpath(folder)
    if os.path.commonpath([real, real_folder]) != real_folder:
        raise ValueError(f"{path}: expected a file inside {folder}, found a link to {real}")
    if not os.path.isfile(real):
        raise ValueError(f"{path}: expected a regular file")
    return path


def _read_manifest(path: str) -> dict:
    """serving.json, parsed to what nlohmann/json gives the C++ runner: besides bad JSON, it refuses
    NaN and Infinity, numbers beyond a double, text that is not Unicode (lone UTF-16 surrogate
    escapes), NUL characters, and nesting or size beyond its bounds. A UTF-8 BOM is skipped."""
    def number(text: str, convert):
        if math.isinf(float(text)):
            raise ValueError(f"{path}: expected numbers within a double's range, found {text[:40]}")
        return convert(text)

    def constant(name: str):
        raise ValueError(f"{path}: expected JSON, found {name}")

    with reading(path, "serving manifest"):
        with open(path, "rb") as f:
            data = f.read(MAX_MANIFEST_BYTES + 1)
        if len(data) > MAX_MANIFEST_BYTES:
            raise ValueError(f"{path}: expected at most {MAX_MANIFEST_BYTES} bytes")
        manifest = json.loads(data.decode("utf-8-sig"), parse_constant=constant,
                              parse_int=lambda text: number(text, int), parse_float=lambda text: number(text, float))
        _check_json_values(manifest, path)
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return manifest


def _check_json_values(value, path: str, depth: int = 0) -> None:
    """What Python's json takes and nlohmann/json (or a C string) does not: nesting deeper than
    MAX_MANIFEST_DEPTH containers, unpaired surrogates and NUL characters in strings."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: expected text, found an unpaired UTF-16 surrogate escape") from None
        if "\0" in value:
            raise ValueError(f"{path}: expected text without NUL characters")
    elif isinstance(value, (dict, list)):
        if depth == MAX_MANIFEST_DEPTH:
            raise ValueError(f"{path}: expected JSON nested at most {MAX_MANIFEST_DEPTH} levels deep")
        for item in [*value, *value.values()] if isinstance(value, dict) else value:
            _check_json_values(item, path, depth + 1)


def _string(mapping: dict, key: str, path: str, parent: str = "") -> str:
    value = mapping.get(key)
    if not isinstance(value, str):
        raise ValueError(f'{path}: expected a string "{key}"' + (f' in "{parent}"' if parent else ""))
    return value


def _object(mapping: dict, key: str, path: str) -> dict:
    value = mapping.get(key)
    if not isinstance(value, dict):
        raise ValueError(f'{path}: expected an object "{key}"')
    return value


def _floats(value, count: int) -> bool:
    """Whether value is a list of `count` numbers that fit a float32."""
    return (isinstance(value, list) and len(value) == count
            and all(type(x) in (int, float) and abs(x) <= FLOAT32_MAX for x in value))


def _check_head(head, path: str) -> None:
    """serving.json's "head" (ner.serving.artifacts.head_description), as inference/cc/head.cc checks it."""
    if not isinstance(head, dict):
        raise ValueError(f'{path}: expected an object "head"')
    if head.get("type") not in ("crf", "softmax"):
        raise ValueError(f'{path}: expected head "type" to be "crf" or "softmax"')
    tags = head.get("tags")
    if not isinstance(tags, list) or not tags or not all(isinstance(tag, str) for tag in tags):
        raise ValueError(f'{path}: expected head "tags" to be a non-empty list of strings')
    n = len(tags)
    if head["type"] == "crf":
        transitions = head.get("transitions")
        if not (isinstance(transitions, list) and len(transitions) == n and all(_floats(row, n) for row in transitions)):
            raise ValueError(f'{path}: expected head "transitions" to be {n} lists of {n} float32 numbers '
                             f"(the head has {n} tags)")
        for key in ("start", "end"):
            if not _floats(head.get(key), n):
                raise ValueError(f'{path}: expected head "{key}" to be a list of {n} float32 numbers (the head has {n} tags)')


def _check_manifest(manifest: dict, path: str) -> None:
    """The checks that need no graph, in the order of tagger.cc's ParseManifest (the same message first)."""
    graph = _string(manifest, "graph", path)
    if graph in ("", ".", "..") or "/" in graph:
        raise ValueError(f'{path}: expected "graph" to be a file name inside the folder, found "{graph}"')
    _string(manifest, "init_op", path)
    inputs, outputs = _object(manifest, "inputs", path), _object(manifest, "outputs", path)
    columns = manifest.get("feature_columns")
    if not isinstance(columns, list) or not all(type(c) is int and 1 <= c <= MAX_FEATURE_COLUMN for c in columns):
        raise ValueError(f'{path}: expected "feature_columns" to be a list of column numbers from 1 to {MAX_FEATURE_COLUMN}')
    for key in ("words", "lengths"):
        _string(inputs, key, path, "inputs")
    if columns:
        _string(inputs, "features", path, "inputs")
    elif "features" in inputs:
        raise ValueError(f'{path}: expected no "features" in "inputs", as "feature_columns" is empty')
    if "head" in manifest:
        _check_head(manifest["head"], path)
        _string(outputs, "emissions", path, "outputs")
    else:
        for key in ("tags", "confidence"):
            _string(outputs, key, path, "outputs")


def _tensor(graph: tf.Graph, name: str, dtype: tf.DType, path: str, what: str) -> tf.Tensor:
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
    if tensor.dtype != dtype:
        raise ValueError(f"{path}: expected {name} ({what}) to have dtype {dtype.name}")
    return tensor


def _emissions_mismatch(path: str, name: str, num_tags: int, dims) -> ValueError:
    """dims: the emissions' shape, None where unknown."""
    shape = ", ".join("?" if d is None else str(d) for d in dims)
    return ValueError(f"{path}: expected the graph's emissions {name} to be scores [batch, time, {num_tags}] "
                      f"for the head's {num_tags} tags, found shape [{shape}]")


def _check_graph(graph: tf.Graph, manifest: dict, path: str) -> None:
    """The init op and the tensors serving.json names, in tagger.cc's order; the emission scores are
    as wide as the head has tags wherever the graph's static shape says so (tagging checks the rest)."""
    init_op = manifest["init_op"]
    try:
        graph.get_operation_by_name(init_op)
    except (KeyError, ValueError):
        raise ValueError(f'{path}: expected the graph to have an operation {init_op} ("init_op")') from None
    inputs, outputs = manifest["inputs"], manifest["outputs"]
    for key in ("words", "lengths", "features"):
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
    config_path = _file_inside(folder, model_folder.CONFIG, "config file")
    config = Config.load(config_path)
    manifest_path = _file_inside(folder, model_folder.MANIFEST, "serving manifest")
    manifest = _read_manifest(manifest_path)
    _check_manifest(manifest, manifest_path)
    # The Python loaders read the columns from config.json, the C API from serving.json.
    if manifest["feature_columns"] != config.feature_columns:
        raise ValueError(f'{manifest_path}: expected "feature_columns" {config.feature_columns} as in {config_path}, '
                         f'found {manifest["feature_columns"]}')
    graph_path = _file_inside(folder, manifest["graph"], "frozen graph")
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
        self._num_tags = len(manifest["head"]["tags"]) if self._head else 0
        self._manifest_path = os.path.join(folder, model_folder.MANIFEST)  # named when the emissions do not fit the head
        fetches = [self.outputs["emissions"]] if self._head else [self.outputs["tags"], self.outputs["confidence"]]
        self._run = self._session.make_callable(fetches, feeds)

    def _inputs(self, words, lengths, features) -> list:
        return [np.asarray(a) for a in [words, lengths] + ([features] if self._takes_features else [])]

    def predict(self, words, lengths, features):
        outputs = self._run(*self._inputs(words, lengths, features))
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
