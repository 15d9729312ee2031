"""Serving artifacts of a model folder: the export (SavedModel) and the frozen GraphDef.

    runs/NAME/export/   saved_model.pb, variables/, serving.json, config.json
    runs/NAME/frozen/   graph.pb, serving.json, config.json

Both hold the serving function (model.Tagger.serving_function): words [B, T] ('' padding),
lengths [B] and, only for models that read feature columns, features [B, T, F] in; tags [B, T]
(IOB2) and confidence [B, T] out. The vocabularies are hash tables inside the graph.

A frozen graph cannot capture a table from outside, so each table becomes a HashTableV2 node
filled by an InitializeTableV2 node from constant keys and values, all grouped under the op
named in serving.json's "init_op" that a loader runs once after importing the graph (the TF1
table scheme: C and C++ loaders need nothing beyond the graph). serving.json also names the
input and output tensors and the feature columns and, for the frozen graph, describes the head
so that a runner can decode the emission scores natively (frozen_graph).
"""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from atomic import replace_folder
from config import Config
from model_files import reading
from numpy_head import NumpyHead

EXPORT_DIR = "export"
FROZEN_DIR = "frozen"
CONFIG = "config.json"
FROZEN_GRAPH = "graph.pb"
MANIFEST = "serving.json"
INIT_OP = "init_tables"
SIGNATURE = "serving_default"


def _write_manifest(folder: str, manifest: dict) -> None:
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def export(model, config_path: str, target: str) -> None:
    """Writes the SavedModel with the serving signature, the model's config beside it, and a
    serving.json naming the signature's tensors for loaders without a SavedModel parser (C API)."""
    def fill(folder):
        tf.saved_model.save(model, folder, signatures={SIGNATURE: model.serving_function()})
        saved_model = saved_model_pb2.SavedModel()
        with open(os.path.join(folder, "saved_model.pb"), "rb") as f:
            saved_model.ParseFromString(f.read())
        signature = saved_model.meta_graphs[0].signature_def[SIGNATURE]
        _write_manifest(folder, {"inputs": {key: value.name for key, value in signature.inputs.items()},
                                 "outputs": {key: value.name for key, value in signature.outputs.items()},
                                 "feature_columns": list(model.config.feature_columns),
                                 "tensorflow_version": tf.__version__})
        shutil.copyfile(config_path, os.path.join(folder, CONFIG))

    replace_folder(target, fill)


def _table_lookup(graph_def, handle_name: str):
    """The LookupTableFindV2 node that reads a table handle, through the Identity nodes that
    function inlining puts between them."""
    readers = {}
    for node in graph_def.node:
        if node.input:
            readers.setdefault(node.input[0], []).append(node)
    pending = [handle_name]
    while pending:
        for node in readers.get(pending.pop(), []):
            if node.op == "LookupTableFindV2":
                return node
            if node.op == "Identity":
                pending.append(node.name)
    raise ValueError(f"frozen graph input {handle_name} is a resource but no table lookup reads it")


def _table_nodes(graph_def, placeholder, handle) -> list:
    """Turns a captured table's placeholder into a HashTableV2 node in place and returns the
    constant keys and values and the InitializeTableV2 node that fills the table with them."""
    name = placeholder.name
    finder = _table_lookup(graph_def, name)
    key_dtype, value_dtype = tf.as_dtype(finder.attr["Tin"].type), tf.as_dtype(finder.attr["Tout"].type)
    keys, values = tf.raw_ops.LookupTableExportV2(table_handle=handle, Tkeys=key_dtype, Tvalues=value_dtype)
    placeholder.Clear()
    placeholder.name = name
    placeholder.op = "HashTableV2"
    placeholder.attr["key_dtype"].type = key_dtype.as_datatype_enum
    placeholder.attr["value_dtype"].type = value_dtype.as_datatype_enum
    constants = []
    for suffix, tensor in (("keys", keys), ("values", values)):
        constant = tf.compat.v1.NodeDef(name=f"{name}/{suffix}", op="Const")
        constant.attr["dtype"].type = tensor.dtype.as_datatype_enum
        constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(tensor.numpy()))
        constants.append(constant)
    initializer = tf.compat.v1.NodeDef(name=f"{name}/initialize", op="InitializeTableV2",
                                       input=[name] + [constant.name for constant in constants])
    initializer.attr["Tkey"].type = key_dtype.as_datatype_enum
    initializer.attr["Tval"].type = value_dtype.as_datatype_enum
    return constants + [initializer]


def _drop_control_inputs(graph_def, node_names: list[str]) -> None:
    """A function's outputs wait, through control inputs, for every stateful op it ran: variable
    reads (constants once frozen) and table lookups, including those inside the CRF marginals'
    tf.cond. A frozen graph has no effects left to order (the tables are filled once by the init
    op), so the waits only make every fetch run ops it does not need, such as that cond."""
    wanted = set(node_names)
    for node in graph_def.node:
        if node.name in wanted:
            data_inputs = [name for name in node.input if not name.startswith("^")]
            del node.input[:]
            node.input.extend(data_inputs)


def frozen_graph(model) -> tuple:
    """-> (GraphDef of the serving function with variables as constants and tables inside, manifest).

    When the model's head can run outside the graph (model.head_description), the graph also
    outputs the emission scores and the manifest describes the head: the C++ runner then stops
    the session at the scores and decodes natively, skipping the graph's loops over time."""
    head = model.head_description()
    function = model.serving_function(with_emissions=head is not None)
    frozen = convert_variables_to_constants_v2(function)
    graph_def = frozen.graph.as_graph_def()
    # What remains captured after freezing is the tables: resource handles fed from outside.
    handles = {internal.op.name: external for external, internal in function.graph.captures
               if external.dtype == tf.resource}
    table_placeholders = [node for node in graph_def.node
                          if node.op == "Placeholder" and node.attr["dtype"].type == tf.resource.as_datatype_enum]
    initializers = []
    for placeholder in table_placeholders:
        if placeholder.name not in handles:
            raise ValueError(f"frozen graph input {placeholder.name} is a resource but not a captured table")
        new_nodes = _table_nodes(graph_def, placeholder, handles[placeholder.name])
        graph_def.node.extend(new_nodes)
        initializers.append(new_nodes[-1].name)
    graph_def.node.add(name=INIT_OP, op="NoOp", input=[f"^{name}" for name in initializers])
    data_inputs = [t for t in frozen.inputs if t.dtype != tf.resource]
    names = [spec.name for spec in function.structured_input_signature[0]]
    output_names = tf.nest.flatten({key: key for key in function.structured_outputs})  # frozen.outputs' order
    outputs = dict(zip(output_names, frozen.outputs))
    _drop_control_inputs(graph_def, [tensor.op.name for tensor in outputs.values()])
    manifest = {"graph": FROZEN_GRAPH,
                "inputs": {name: tensor.name for name, tensor in zip(names, data_inputs)},
                "outputs": {key: tensor.name for key, tensor in outputs.items()},
                "init_op": INIT_OP,
                "feature_columns": list(model.config.feature_columns),
                "tensorflow_version": tf.__version__}
    if head is not None:
        manifest["head"] = head
    return graph_def, manifest


def freeze(model, config_path: str, target: str) -> None:
    graph_def, manifest = frozen_graph(model)

    def fill(folder):
        with open(os.path.join(folder, FROZEN_GRAPH), "wb") as f:
            f.write(graph_def.SerializeToString())
        _write_manifest(folder, manifest)
        shutil.copyfile(config_path, os.path.join(folder, CONFIG))

    replace_folder(target, fill)


class ExportedTagger:
    """An export folder, with the predict(words, lengths, features) and config of model.Tagger."""

    def __init__(self, folder: str):
        self.config = Config.load(os.path.join(folder, CONFIG))
        for name in ("saved_model.pb", os.path.join("variables", "variables.index")):
            if not os.path.exists(os.path.join(folder, name)):
                raise FileNotFoundError(f"{os.path.join(folder, name)}: missing (the export folder is incomplete)")
        with reading(folder, "SavedModel (saved_model.pb, variables/)"):
            self._saved = tf.saved_model.load(folder)  # owns the variables the signature reads
            self._signature = self._saved.signatures[SIGNATURE]

    def predict(self, words, lengths, features):
        if self.config.feature_columns:
            return self._signature(words=words, lengths=lengths, features=features)
        return self._signature(words=words, lengths=lengths)


# The C++ runner's library (inference/cc; `make serving` builds it), which frozen folders run on
# when it exists: $NER_TAGGER_LIB names it (empty: never use one), else build/cc/libtagger.so.
NATIVE_LIBRARY_ENV = "NER_TAGGER_LIB"
DEFAULT_NATIVE_LIBRARY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "build", "cc", "libtagger.so")


def native_library() -> str | None:
    path = os.environ.get(NATIVE_LIBRARY_ENV)
    if path is None:
        path = DEFAULT_NATIVE_LIBRARY if os.path.exists(DEFAULT_NATIVE_LIBRARY) else ""
    return path or None


def load_frozen(folder: str, threads: int = 0):
    """A frozen folder on the C++ runner's library when there is one (NativeFrozenTagger: two
    thirds of the session's time per sentence), else in a TensorFlow session (FrozenTagger)."""
    library = native_library()
    return NativeFrozenTagger(folder, library, threads) if library else FrozenTagger(folder, threads)


def _read_frozen(folder: str) -> tuple:
    """-> (config, manifest, graph as a tf.Graph) of a frozen folder; an error names a file that
    is missing or malformed."""
    config = Config.load(os.path.join(folder, CONFIG))
    with reading(os.path.join(folder, MANIFEST), "serving manifest"):
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as f:
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
    """A frozen folder run by the C++ runner's library through ctypes (tagger_ctypes), with the
    predict(words, lengths, features) of FrozenTagger: the same tags, from the same graph and
    the same native head as build/cc/tagger."""

    def __init__(self, folder: str, library: str, threads: int = 0):
        """threads: as FrozenTagger's. The folder is checked here first (_read_frozen), so that a
        damaged file gets the same error naming it as from FrozenTagger."""
        from tagger_ctypes import CTagger, TaggerError
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


def command_line(argv, description: str, default_dir: str, write) -> None:
    """export.py and freeze.py: load a model folder's best checkpoint, write(model, config, out)."""
    import argparse

    from tagging import load_checkpoint
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{default_dir})")
    args = parser.parse_args(argv)
    try:
        model = load_checkpoint(args.model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    out = args.out or os.path.join(args.model_dir, default_dir)
    from model import NotExportable
    try:
        write(model, os.path.join(args.model_dir, CONFIG), out)
    except NotExportable as e:
        raise SystemExit(str(e)) from None
    print(f"wrote {out}")
