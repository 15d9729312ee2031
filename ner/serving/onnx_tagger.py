"""An ONNX folder (ner/serving/onnx_export.py) tagged on ONNX Runtime, without TensorFlow: words
become ids in numpy as the graph's featurizer makes them (ner/serving/ids.py), model.onnx gives
the emission scores, numpy decodes them with the head serving.json describes
(ner/serving/numpy_head.py), and raw text is tokenized as the graph's tokenizer does
(ner/serving/text_tokens.py). Nothing this module imports loads TensorFlow (a test runs it where
TensorFlow cannot be imported).

OnnxTagger has the loaders' interface (ner/serving/loaders.py): `config`, predict(words, lengths,
features) -> {"tags", "confidence"} and tokenize(texts).
"""
from __future__ import annotations

import json
import os
from functools import cached_property

import numpy as np

from ner import integrity, model_folder
from ner.config import Config
from ner.model_folder import read_json_text, reading
from ner.serving.manifest import check_head, file_inside, read_manifest, string_value
from ner.serving.numpy_head import NumpyHead

FORMAT = "onnx"
# model.onnx's inputs, in this order, where the model reads them (input_names).
ONNX_INPUTS = ("word_ids", "char_ids", "shape_ids", "column_ids", "lengths")
OUTPUT = "emissions"
# Rows per ONNX Runtime run: at most this many character positions (rows x words x characters),
# about 20 MB of intermediates; a run costs about 0.1 ms besides its arithmetic.
CHAR_POSITIONS_PER_RUN = 1 << 14
# The writer named in the folder's integrity manifest (ner.integrity.WRITERS).
WRITER = "export.py"


def input_names(config: Config) -> list[str]:
    """model.onnx's inputs for this config: shape_ids only for models with word shapes, column_ids
    only for models with feature columns."""
    return [name for name in ONNX_INPUTS
            if (name != "shape_ids" or config.casing_dim > 0) and (name != "column_ids" or config.feature_columns)]


def check_onnx_manifest(manifest: dict, path: str, config: Config, config_path: str) -> None:
    """serving.json of an ONNX folder, as strictly as manifest.check_manifest checks a frozen one's:
    every key the tagger relies on, with its type, and agreeing with config.json."""
    if manifest.get("format") != FORMAT:
        raise ValueError(f'{path}: expected "format" to be "{FORMAT}"')
    for key in ("model", "tokenizer"):
        name = string_value(manifest, key, path)
        if name in ("", ".", "..") or "/" in name:
            raise ValueError(f'{path}: expected "{key}" to be a file name inside the folder, found "{name}"')
    expected = input_names(config)
    if manifest.get("inputs") != expected:
        raise ValueError(f'{path}: expected "inputs" to be {expected} for the model {config_path} describes, '
                         f'found {manifest.get("inputs")}')
    if manifest.get("outputs") != [OUTPUT]:
        raise ValueError(f'{path}: expected "outputs" to be ["{OUTPUT}"]')
    if type(manifest.get("int8")) is not bool:
        raise ValueError(f'{path}: expected "int8" to be true or false')
    if manifest.get("feature_columns") != config.feature_columns:
        raise ValueError(f'{path}: expected "feature_columns" {config.feature_columns} as in {config_path}, '
                         f'found {manifest.get("feature_columns")}')
    if manifest.get("context_words") != 0 or config.context_words:
        raise ValueError(f'{path}: expected "context_words" 0: ONNX folders serve models that read sentences alone')
    check_head(manifest.get("head"), path)


def read_onnx_files(folder: str) -> tuple[Config, dict, str]:
    """-> (config, manifest, the model's path) of an ONNX folder, whose tokenizer patterns are there
    too; an error names the file at fault."""
    config_path = file_inside(folder, model_folder.CONFIG, "config file")
    config = Config.load(config_path)
    manifest_path = file_inside(folder, model_folder.MANIFEST, "serving manifest")
    manifest = read_manifest(manifest_path)
    check_onnx_manifest(manifest, manifest_path, config, config_path)
    file_inside(folder, manifest["tokenizer"], "tokenizer patterns")
    return config, manifest, file_inside(folder, manifest["model"], "ONNX model")


def _session(path: str, threads: int):
    """One ONNX Runtime session on the CPU; threads: intra-op threads (0: ONNX Runtime's default),
    ops run one after the other in the caller's thread."""
    import onnxruntime
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3  # its warnings are about graph optimizations, not the user's input
    with reading(path, "ONNX model"):
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def _check_session(session, manifest: dict, path: str, model_path: str) -> None:
    """model.onnx takes the inputs serving.json lists, as int32, and gives float32 scores as wide
    as the head has tags wherever its static shape says."""
    inputs = {item.name: item.type for item in session.get_inputs()}
    if sorted(inputs) != sorted(manifest["inputs"]) or set(inputs.values()) != {"tensor(int32)"}:
        raise ValueError(f"{model_path}: expected int32 inputs {manifest['inputs']} as {path} lists, found "
                         + ", ".join(f"{name} {kind}" for name, kind in inputs.items()))
    outputs = {item.name: item for item in session.get_outputs()}
    num_tags = len(manifest["head"]["tags"])
    emissions = outputs.get(OUTPUT)
    if (emissions is None or emissions.type != "tensor(float)" or len(emissions.shape) != 3
            or isinstance(emissions.shape[2], int) and emissions.shape[2] != num_tags):
        raise ValueError(f"{model_path}: expected an output {OUTPUT}, float32 scores [batch, time, {num_tags}] for the "
                         f"head's {num_tags} tags")


class OnnxTagger:
    """An ONNX folder with the loaders' interface; threads: as FrozenTagger's."""

    def __init__(self, folder: str, threads: int = 0):
        from ner.data.vocabulary import load_vocabulary
        from ner.serving.ids import IdMapper
        integrity.verify(folder, WRITER)
        self.config, manifest, model_path = read_onnx_files(folder)
        self._session = _session(model_path, threads)
        _check_session(self._session, manifest, file_inside(folder, model_folder.MANIFEST, "serving manifest"),
                       model_path)
        self._head = NumpyHead(manifest["head"])
        self._ids = IdMapper(load_vocabulary(folder, embeddings=False), self.config)
        self.int8 = manifest["int8"]
        self._patterns_path = os.path.join(folder, manifest["tokenizer"])

    def emissions(self, inputs: dict) -> np.ndarray:
        """model.onnx on its inputs (ids as the featurizer makes them): [B, T, num_tags], a few rows
        at a time: ONNX Runtime's intermediates grow with rows x words x characters (256 rows of
        long sentences took 300 MB on bilstm_crf.json). Rows keep their padded width, so each
        sentence is computed on the same shapes as in one run."""
        char_ids = inputs["char_ids"]
        rows = max(1, CHAR_POSITIONS_PER_RUN // max(1, char_ids.shape[1] * char_ids.shape[2]))
        if rows >= len(char_ids):
            return self._session.run([OUTPUT], inputs)[0]
        return np.concatenate([self._session.run([OUTPUT], {name: ids[start:start + rows] for name, ids in inputs.items()})[0]
                               for start in range(0, len(char_ids), rows)])

    def predict(self, words, lengths, features, left_context=None, right_context=None):
        """words [B, T] ('' padding), lengths [B], features [B, T, F] of the config's columns ->
        {"tags": IOB2 bytes [B, T] ('' past each length), "confidence": [B, T]}. Context is read by
        no model an ONNX folder holds."""
        words, lengths = np.asarray(words, dtype=object), np.asarray(lengths, dtype=np.int32)
        if not words.size or not lengths.any():  # nothing to tag: ONNX Runtime takes no empty time axis
            return {"tags": np.full(words.shape, b"", dtype=object), "confidence": np.zeros(words.shape, np.float32)}
        inputs = self._ids.inputs(words, lengths, features)
        return self._head.predict(self.emissions(inputs), lengths)

    @cached_property
    def _tokenizer(self):
        """The folder's tokenizer, built at the first raw text (its tables take about 0.1 s and 100 MB,
        which tagging CoNLL never needs)."""
        from ner.serving.text_tokens import TextTokenizer
        with reading(self._patterns_path, "tokenizer patterns"):
            return TextTokenizer(json.loads(read_json_text(self._patterns_path)))

    def tokenize(self, texts):
        """Each raw text's (token, start, end), as the graph's tokenizer gives them."""
        return self._tokenizer.tokenize(texts)
