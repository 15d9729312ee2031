"""ONNX export: a model folder's best checkpoint as an ONNX model from ids to emission scores, in a
folder that ONNX Runtime serves without TensorFlow (ner/serving/onnx_tagger.py):

    runs/NAME/onnx/   model.onnx serving.json config.json tokenizer.json words.txt chars.txt
                      entity_types.txt column<i>.txt meta.json integrity.json

model.onnx takes int32 word_ids [B, T], char_ids [B, T, L], shape_ids [B, T] (models with word
shapes), column_ids [B, T, F] (models with feature columns) and lengths [B], as the graph's
featurizer makes them (ner/model/features/featurizer.py; its numpy twin is ner/serving/ids.py),
and gives float32 emissions [B, T, num_tags]; serving.json lists the inputs the model has and
describes the head, which numpy decodes (ner/serving/numpy_head.py). tokenizer.json holds the
raw-text tokenizer's patterns and tables (ner.data.tokenizer.tokenizer_patterns), so that the folder
tokenizes as the graph did whatever Unicode version the serving machine's `regex` has.

The graph's strings, tables, tokenizer and CRF loops have no ONNX form that tf2onnx reaches, so
what is converted is Tagger.emissions_from_ids, traced as a tf.function. tf2onnx converts every
op of it (the QRNN's tf.scan becomes an ONNX Loop) but tf.raw_ops.BlockLSTM, which _block_lstm
maps to an ONNX LSTM node (each BiLSTM layer's two then become one bidirectional node:
_fuse_bidirectional). Converting the traced function keeps one meaning of each layer (the
TensorFlow code), where building the ONNX graph by hand would repeat every layer's arithmetic.
"""
from __future__ import annotations

import json
import logging
import os

import numpy as np
import onnx
import tensorflow as tf

from ner import integrity, model_folder
from ner.config import Config
from ner.data.tokenizer import tokenizer_patterns
from ner.data.vocabulary import vocabulary_files
from ner.serving.artifacts import head_description, write_artifact, write_manifest
from ner.serving.onnx_tagger import FORMAT, OUTPUT, WRITER, input_names

# tf2onnx 1.17 writes opsets up to 18; ONNX Runtime 1.31 runs models of IR version up to 13, and
# onnx 1.23 would stamp its own 14 on them.
OPSET = 17
INPUT_SHAPES = {"word_ids": [None, None], "char_ids": [None, None, None], "shape_ids": [None, None],
                "column_ids": [None, None, None], "lengths": [None]}
# int8 pays on the big matrices only (a quantized char CNN is slower than float's).
QUANTIZED_OPS = ("LSTM", "MatMul")


def check_exportable(config, model_dir: str) -> None:
    """One line for what the ONNX export cannot convert: contextual features (BERT and ELMo, hence
    document context) and IOB1 models (their IOB2 output depends on neighbouring tags, which only
    the graph's decoding serves). Every encoder converts (tests/serving/test_onnx.py)."""
    fix = "serve it with export.py or freeze.py instead"
    if config.emb_class != "glove":
        raise ValueError(f"{model_dir}: emb_class={config.emb_class}: the ONNX export takes GloVe/character/shape/"
                         f"column features only (BERT and ELMo stay in TensorFlow); {fix}")
    if config.tag_scheme == "iob1":
        raise ValueError(f"{model_dir}: tag_scheme=iob1: the ONNX export serves IOB2 and IOBES models only; {fix}")


def emission_function(model):
    """model.emissions_from_ids as a tf.function on input_names' int32 inputs (dict output "emissions")."""
    names = input_names(model.config)
    specs = [tf.TensorSpec(INPUT_SHAPES[name], tf.int32, name=name) for name in names]

    def emissions(*inputs):
        named = dict(zip(names, inputs))
        columns = [named["column_ids"][:, :, i] for i in range(len(model.config.feature_columns))]
        return {OUTPUT: model.emissions_from_ids(named["word_ids"], named["char_ids"], columns, named.get("shape_ids"),
                                                 named["lengths"], training=False)}
    return tf.function(emissions, input_signature=specs, autograph=False), specs


def _constant(node) -> np.ndarray:
    """The value of a frozen variable, through the Identity nodes that reading it leaves."""
    while node.type == "Identity":
        node = node.inputs[0]
    if not node.is_const():
        raise ValueError(f"BlockLSTM: expected a constant weight, found {node.type} {node.name}")
    return node.get_tensor_value(as_list=False)


# ONNX's LSTM gate blocks are input, output, forget, cell; TensorFlow's BlockLSTM's input, cell, forget, output.
_ONNX_GATE_ORDER = (0, 3, 2, 1)


def _onnx_gates(matrix: np.ndarray) -> np.ndarray:
    """[..., 4 * units] in BlockLSTM's gate order -> the same in ONNX's."""
    blocks = np.split(matrix, 4, axis=-1)
    return np.concatenate([blocks[i] for i in _ONNX_GATE_ORDER], axis=-1)


def _block_lstm(ctx, node, name, args):
    """tf2onnx handler: a BlockLSTM as bilstm.py runs it (no peepholes, no clipping, zero initial
    state, only the hidden states read) -> ONNX LSTM + Squeeze of its direction axis."""
    if node.get_attr_value("use_peephole") or node.get_attr_value("cell_clip") >= 0:
        raise ValueError(f"BlockLSTM {name}: peepholes and cell clipping have no conversion")
    hidden_output = 6  # BlockLSTM's outputs: i, cs, f, o, ci, co, h
    for i, output in enumerate(node.output):
        if i != hidden_output and ctx.find_output_consumers(output):
            raise ValueError(f"BlockLSTM {name}: output {i} is read; only the hidden states convert")
    kernel, bias = _constant(node.inputs[4]), _constant(node.inputs[8])
    units = kernel.shape[1] // 4
    input_dim = kernel.shape[0] - units
    bias = bias.copy()
    bias[2 * units:3 * units] += node.get_attr_value("forget_bias")  # the kernel adds it to the forget gate
    weights = ctx.make_const(f"{name}/W", _onnx_gates(kernel[:input_dim]).T[None].astype(np.float32))
    recurrent = ctx.make_const(f"{name}/R", _onnx_gates(kernel[input_dim:]).T[None].astype(np.float32))
    # ONNX adds an input and a recurrent bias: the recurrent one stays zero.
    biases = ctx.make_const(f"{name}/B", np.concatenate([_onnx_gates(bias), np.zeros(4 * units, np.float32)])[None])
    lstm = ctx.make_node("LSTM", [node.input[1], weights.output[0], recurrent.output[0], biases.output[0]],
                         attr={"hidden_size": units, "direction": "forward"}, name=f"{name}/lstm",
                         dtypes=[onnx.TensorProto.FLOAT])
    axes = ctx.make_const(f"{name}/direction_axis", np.array([1], np.int64))
    hidden = ctx.make_node("Squeeze", [lstm.output[0], axes.output[0]], name=f"{name}/hidden",
                           dtypes=[onnx.TensorProto.FLOAT])
    ctx.replace_all_inputs(node.output[hidden_output], hidden.output[0])
    ctx.remove_node(node.name)


def _fuse_bidirectional(graph: onnx.GraphProto) -> None:
    """Each BiLSTM layer as converted (bilstm.py: a forward LSTM on x, a backward one on x reversed
    within each length and reversed back, their outputs concatenated) becomes one bidirectional
    LSTM node reading the lengths as sequence_lens, which reverses within each length itself:
    fewer nodes, and both directions in one kernel call. Past a sentence's length its outputs are
    zeros where TensorFlow's are whatever the padding gave, positions that nothing downstream reads."""
    producer = {output: node for node in graph.node for output in node.output}
    initializers = {tensor.name: tensor for tensor in graph.initializer}

    def made_by(name: str, op: str):
        node = producer.get(name)
        return node if node is not None and node.op_type == op else None

    def hidden_states(name: str):
        """The LSTM whose squeezed output `name` is (_block_lstm's pattern), or None."""
        squeeze = made_by(name, "Squeeze")
        return made_by(squeeze.input[0], "LSTM") if squeeze is not None else None

    for concat in [node for node in graph.node if node.op_type == "Concat" and len(node.input) == 2]:
        forward = hidden_states(concat.input[0])
        unreverse = made_by(concat.input[1], "ReverseSequence")
        backward = hidden_states(unreverse.input[0]) if unreverse is not None else None
        reverse = made_by(backward.input[0], "ReverseSequence") if backward is not None else None
        if forward is None or reverse is None or reverse.input[0] != forward.input[0] or len(forward.input) != 4:
            continue
        name = forward.name.rsplit("/", 1)[0] + "/bidirectional"
        for i, part in enumerate("WRB"):  # [1, ...] each -> [2, ...], forward first
            stacked = np.concatenate([onnx.numpy_helper.to_array(initializers[node.input[i + 1]])
                                      for node in (forward, backward)])
            graph.initializer.append(onnx.numpy_helper.from_array(stacked, f"{name}/{part}"))
        units = next(attribute.i for attribute in forward.attribute if attribute.name == "hidden_size")
        graph.initializer.append(onnx.numpy_helper.from_array(np.array([0, 0, 2 * units], np.int64), f"{name}/width"))
        nodes = list(graph.node)
        at = nodes.index(concat)  # where the concatenation was, its inputs' inputs are all made
        nodes[at:at + 1] = [
            onnx.helper.make_node("LSTM", [forward.input[0], f"{name}/W", f"{name}/R", f"{name}/B", "lengths"],
                                  [f"{name}/Y"], name=name, hidden_size=units, direction="bidirectional"),
            # Y [T, 2, B, units] -> [T, B, 2, units] -> [T, B, 2 * units]: the concatenation's layout.
            onnx.helper.make_node("Transpose", [f"{name}/Y"], [f"{name}/directions_last"], perm=[0, 2, 1, 3]),
            onnx.helper.make_node("Reshape", [f"{name}/directions_last", f"{name}/width"], [concat.output[0]])]
        del graph.node[:]
        graph.node.extend(nodes)
    _remove_unread(graph)


def _read_names(nodes) -> set[str]:
    """The tensors these nodes read, including those their subgraphs (a Loop's body) read from outside."""
    names = set()
    for node in nodes:
        names.update(node.input)
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                names |= _read_names(attribute.g.node)
    return names


def _remove_unread(graph: onnx.GraphProto) -> None:
    """Nodes and initializers whose outputs nothing reads any more."""
    while True:
        read = _read_names(graph.node) | {output.name for output in graph.output}
        unread = [node for node in graph.node if not any(output in read for output in node.output)]
        if not unread:
            break
        for node in unread:
            graph.node.remove(node)
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in read]:
        graph.initializer.remove(tensor)


def onnx_model(model) -> onnx.ModelProto:
    """The model's emission function as ONNX (opset OPSET, an IR version ONNX Runtime reads)."""
    import tf2onnx
    function, specs = emission_function(model)
    # As artifacts._constants_graph: the trace inherits the eager context's table initializers (None
    # each), which TensorFlow warns it cannot serialize when tf2onnx freezes the function.
    function.get_concrete_function(*specs).graph.clear_collection(tf.compat.v1.GraphKeys.TABLE_INITIALIZERS)
    proto, _ = tf2onnx.convert.from_function(function, input_signature=specs, opset=OPSET,
                                             custom_op_handlers={"BlockLSTM": (_block_lstm, [])})
    _fuse_bidirectional(proto.graph)
    proto.ir_version = onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    onnx.checker.check_model(proto)
    return proto


def quantized(path: str) -> None:
    """Replaces the ONNX model at `path` by its int8 dynamic quantization of QUANTIZED_OPS."""
    from onnxruntime.quantization import quantize_dynamic
    original = path + ".float"
    os.replace(path, original)
    # It advises "pre-processing before quantization" on the root logger: shape inference, which
    # dynamic quantization of LSTM and MatMul does not need. The user cannot act on it.
    root_level = logging.root.level
    logging.root.setLevel(logging.ERROR)
    try:
        quantize_dynamic(original, path, op_types_to_quantize=list(QUANTIZED_OPS))
    finally:
        logging.root.setLevel(root_level)
        os.remove(original)


def manifest(model, int8: bool) -> dict:
    """serving.json of an ONNX folder (ner.serving.onnx_tagger.check_onnx_manifest reads it)."""
    config = model.config
    return {"format": FORMAT, "model": model_folder.ONNX_MODEL, "tokenizer": model_folder.TOKENIZER_PATTERNS,
            "inputs": input_names(config), "outputs": [OUTPUT],
            "int8": int8, "opset": OPSET, "feature_columns": list(config.feature_columns),
            "context_words": config.context_words, "head": head_description(model),
            "tensorflow_version": tf.__version__}


def write_onnx(model, model_dir: str, folder: str, int8: bool) -> None:
    """Writes the ONNX folder's files into `folder` (a staging folder: model_folder.replace_files)."""
    path = os.path.join(folder, model_folder.ONNX_MODEL)
    onnx.save(onnx_model(model), path)
    if int8:
        quantized(path)
    write_manifest(folder, manifest(model, int8))
    with open(os.path.join(folder, model_folder.TOKENIZER_PATTERNS), "w", encoding="utf-8") as f:
        json.dump(tokenizer_patterns(), f)
    meta = model_folder.read_json(os.path.join(model_dir, model_folder.VOCABULARY_META), "missing")
    # The weights are inside model.onnx: the vocabularies without the embedding matrix.
    for name in [model_folder.CONFIG] + [name for name in vocabulary_files(meta["columns"])
                                         if name != model_folder.EMBEDDINGS]:
        model_folder.copy_file(os.path.join(model_dir, name), os.path.join(folder, name))
    integrity.seal_artifact(folder, WRITER)


def write_onnx_folder(model_dir: str, out: str | None = None, int8: bool = False) -> str:
    """export.py --format onnx: the ONNX folder, into out or MODEL_DIR/onnx (through
    artifacts.write_artifact: ownership, the lock, file-by-file replacement); returns the folder.
    A model it cannot convert is refused before anything is loaded or written."""
    check_exportable(Config.load(os.path.join(model_dir, model_folder.CONFIG)), model_dir)
    return write_artifact(model_dir, model_folder.ONNX_KIND, out,
                          lambda model, folder: write_onnx(model, model_dir, folder, int8))
