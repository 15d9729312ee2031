"""Serving artifacts of a model folder: the export (SavedModel) and the frozen GraphDef.

    runs/NAME/export/   saved_model.pb, variables/, serving.json, config.json
    runs/NAME/frozen/   graph.pb, serving.json, config.json

Both hold the serving function (serving_function): words [B, T] ('' padding),
lengths [B] and, only for models that read feature columns, features [B, T, F], and only for
models that read document context, left_context and right_context [B, C] (up to serving.json's
"context_words" words of the document on each side, ner/data/documents.py) in; tags [B, T]
(IOB2) and confidence [B, T] out. The vocabularies are hash tables inside the graph. Both also
hold the raw-text tokenizer (ner/data/tokenizer.py): text [N] in; tokens [N, T], lengths [N] and
each token's character starts and ends [N, T] out, which a runtime feeds on to the serving
function. It runs TF Text's RegexSplitWithOffsets (and BERT models its WordPiece ops), whose op
libraries serving.json names ("op_libraries") for loaders to load before the graph.

A frozen graph cannot capture a table from outside, so each table becomes a HashTableV2 node
filled by an InitializeTableV2 node from constant keys and values, all grouped under the op
named in serving.json's "init_op" that a loader runs once after importing the graph (the TF1
table scheme: C and C++ loaders need nothing beyond the graph). serving.json also names the
input and output tensors and the feature columns and, for the frozen graph, describes the head
so that a runner can decode the emission scores natively (frozen_graph).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from ner import integrity, model_folder, op_libraries, paths
from ner.data.tokenizer import tokenizer_function
from ner.model.tagger import FEATURES, LEFT_CONTEXT, LENGTHS, RIGHT_CONTEXT, WORDS, Tagger
from ner.serving.loaders import load_checkpoint

INIT_OP = "init_tables"


def serving_inputs(config) -> list[tf.TensorSpec]:
    """The serving function's inputs: words and lengths, features only when the config reads
    feature columns, and the context only when it reads document context (no caller feeds an
    unused input)."""
    return ([WORDS, LENGTHS] + ([FEATURES] if config.feature_columns else [])
            + ([LEFT_CONTEXT, RIGHT_CONTEXT] if config.context_words else []))


def serving_function(model: Tagger, with_emissions: bool = False):
    """model.predict as a concrete function for export and freezing, on serving_inputs.
    with_emissions adds the emission scores [B, T, num_tags], for runners that decode natively
    (head_description)."""
    specs = serving_inputs(model.config)

    def serve(*inputs):
        named = dict(zip([spec.name for spec in specs], inputs))
        words = named["words"]
        features = named.get("features", tf.fill(tf.concat([tf.shape(words), [0]], axis=0), ""))
        context = (named["left_context"], named["right_context"]) if "left_context" in named else None
        return model.predictions(words, named["lengths"], features, context, with_emissions)
    return tf.function(serve, input_signature=specs, autograph=False).get_concrete_function()


def head_description(model: Tagger) -> dict | None:
    """What a runner needs to decode emission scores itself as the graph does: the head's own
    description and the IOB2 tag of each id. None for IOB1 models, whose IOB2 output depends on
    the neighbouring tags (the graph's decoding serves them)."""
    if model.config.tag_scheme == "iob1":
        return None
    return {**model.head.description(), "tags": model.iob2_tag_names()}


def write_manifest(folder: str, manifest: dict) -> None:
    with open(os.path.join(folder, model_folder.MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")


def export(model, config_path: str, folder: str) -> None:
    """Writes the SavedModel with the serving signature, the model's config beside it, and a
    serving.json naming the signature's tensors for loaders without a SavedModel parser (C API)."""
    tf.saved_model.save(model, folder, signatures={model_folder.SIGNATURE: serving_function(model),
                                                   model_folder.TOKENIZER_SIGNATURE: tokenizer_function()})
    saved_model = saved_model_pb2.SavedModel()
    with open(os.path.join(folder, "saved_model.pb"), "rb") as f:
        saved_model.ParseFromString(f.read())
    signatures = saved_model.meta_graphs[0].signature_def

    def names(signature):
        return {"inputs": {key: value.name for key, value in signatures[signature].inputs.items()},
                "outputs": {key: value.name for key, value in signatures[signature].outputs.items()}}
    write_manifest(folder, {**names(model_folder.SIGNATURE),
                             "feature_columns": list(model.config.feature_columns),
                             "context_words": model.config.context_words,
                             "tokenizer": names(model_folder.TOKENIZER_SIGNATURE),
                             "op_libraries": op_libraries.needed_by([saved_model.meta_graphs[0].graph_def]),
                             "tensorflow_version": tf.__version__})
    shutil.copyfile(config_path, os.path.join(folder, model_folder.CONFIG))
    integrity.seal_artifact(folder, "export.py")


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


def _output_names(function) -> list[str]:
    """The names of a concrete function's dict outputs, in the order of its frozen graph's outputs."""
    return tf.nest.flatten({key: key for key in function.structured_outputs})


def _constants_graph(function):
    """convert_variables_to_constants_v2 of a concrete function. It exports the function's graph as a
    MetaGraph, collections included, and a traced graph starts with the collections of the eager
    context, where each table built eagerly (the vocabularies, the tokenizer's) added its initializer
    to tf.compat.v1's "table_initializer" collection: as None, since an eager op returns no
    operation. None cannot be serialized ("Issue encountered when serializing table_initializer",
    once per freeze), and the collection would be dropped anyway; so the function's graph goes
    without it. The frozen graph fills its tables with its own init op (INIT_OP)."""
    function.graph.clear_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
    return convert_variables_to_constants_v2(function)


TOKENIZER_SCOPE = "tokenize"


def _tokenizer_nodes() -> tuple[list, dict]:
    """The tokenizer's nodes, named under TOKENIZER_SCOPE/ so that they join the frozen serving
    graph, and serving.json's "tokenizer" entry naming their input and outputs."""
    function = tokenizer_function().get_concrete_function()
    frozen = _constants_graph(function)  # inlines it into plain nodes
    graph_def = frozen.graph.as_graph_def()
    if graph_def.library.function:
        raise ValueError("the tokenizer graph calls functions, which a merged frozen graph would lack")

    def scoped(name):
        control = name.startswith("^")
        return ("^" if control else "") + f"{TOKENIZER_SCOPE}/{name.lstrip('^')}"
    for node in graph_def.node:
        node.name = scoped(node.name)
        node.input[:] = [scoped(name) for name in node.input]
        if "_class" in node.attr:  # colocation with the unscoped names
            del node.attr["_class"]
    output_names = _output_names(function)
    entry = {"inputs": {"text": scoped(frozen.inputs[0].name)},
             "outputs": {key: scoped(tensor.name) for key, tensor in zip(output_names, frozen.outputs)}}
    return list(graph_def.node), entry


def frozen_graph(model) -> tuple:
    """-> (GraphDef of the serving function with variables as constants and tables inside, manifest).

    When the model's head can run outside the graph (model.head_description), the graph also
    outputs the emission scores and the manifest describes the head: the C++ runner then stops
    the session at the scores and decodes natively, skipping the graph's loops over time."""
    head = head_description(model)
    function = serving_function(model, with_emissions=head is not None)
    frozen = _constants_graph(function)
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
    outputs = dict(zip(_output_names(function), frozen.outputs))
    _drop_control_inputs(graph_def, [tensor.op.name for tensor in outputs.values()])
    manifest = {"graph": model_folder.FROZEN_GRAPH,
                "inputs": {name: tensor.name for name, tensor in zip(names, data_inputs)},
                "outputs": {key: tensor.name for key, tensor in outputs.items()},
                "init_op": INIT_OP,
                "feature_columns": list(model.config.feature_columns),
                "context_words": model.config.context_words,
                "tensorflow_version": tf.__version__}
    tokenizer_nodes, manifest["tokenizer"] = _tokenizer_nodes()
    graph_def.node.extend(tokenizer_nodes)
    manifest["op_libraries"] = op_libraries.needed_by([graph_def])
    if head is not None:
        manifest["head"] = head
    return graph_def, manifest


def freeze(model, config_path: str, folder: str) -> None:
    graph_def, manifest = frozen_graph(model)
    with open(os.path.join(folder, model_folder.FROZEN_GRAPH), "wb") as f:
        f.write(graph_def.SerializeToString())
    write_manifest(folder, manifest)
    shutil.copyfile(config_path, os.path.join(folder, model_folder.CONFIG))
    integrity.seal_artifact(folder, "freeze.py")


def check_target(model_dir: str, kind: str, out: str) -> None:
    """`out` is new, empty or an earlier folder of this kind holding only its files
    (model_folder.check_writable), and never a folder that holds the model."""
    paths.output_folder(out, "--out")
    if os.path.exists(model_dir) and paths.inside(model_dir, out):
        raise ValueError(f"{out}: --out holds the model folder {model_dir}; writing there could overwrite the model")
    model_folder.check_writable(out, kind, "--out")


def _holding(model_dir: str, kind: str):
    """The model folder's lock while its checkpoint is read, so that no train.py writes it
    meanwhile; only on a folder train.py wrote (nothing is written into any other folder)."""
    if os.path.isdir(model_dir) and model_folder.recognise(model_dir) == model_folder.TRAIN_KIND:
        return model_folder.locked(model_dir, model_folder.COMMANDS[kind], "--model_dir")
    return contextlib.nullcontext()


def write_artifact(model_dir: str, kind: str, out: str | None = None, write=None) -> str:
    """export.py and freeze.py: the model folder's best checkpoint written as an export (kind
    "export") or a frozen graph ("frozen"), or by write(model, folder) for another kind (the ONNX
    export), into out or MODEL_DIR/<kind>; returns the folder."""
    out = out or os.path.join(model_dir, kind)
    check_target(model_dir, kind, out)
    if write is None:
        writer = {model_folder.EXPORT_DIR: export, model_folder.FROZEN_DIR: freeze}[kind]

        def write(model, folder):
            writer(model, os.path.join(model_dir, model_folder.CONFIG), folder)
    with _holding(model_dir, kind):
        model = load_checkpoint(model_dir)
        with model_folder.writing(out, kind, "--out"):
            model_folder.replace_files(out, kind, lambda folder: write(model, folder))
    return out
