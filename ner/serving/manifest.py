"""A frozen folder's serving.json and config.json, read and checked without TensorFlow: by the
rules of the C++ runner's library (inference/cc/tagger.cc), which refuses the same manifests with
the same messages. Only the graph's own checks (ner/serving/loaders.py) need TensorFlow."""
from __future__ import annotations

import json
import os

import numpy as np

from ner import model_folder
from ner.config import Config
from ner.model_folder import read_json_text, reading

# It and the graph it names are files inside the folder, and each value has the type and size
# that tagging relies on.
TOKENIZER_OUTPUTS = ("tokens", "lengths", "starts", "ends")  # ner.data.tokenizer.tokenize_graph's
MAX_FEATURE_COLUMN = 2**31 - 2    # the C API's column numbers are ints, and its runner counts column + 1 fields
MAX_CONTEXT_WORDS = 1 << 20       # "context_words": tagger.cc's kMaxContextWords, far beyond any BERT window
CONTEXT_INPUTS = ("left_context", "right_context")  # what a model that reads document context is fed
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the heads' scores become float32s


def file_inside(folder: str, name: str, what: str) -> str:
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


def read_manifest(path: str) -> dict:
    """serving.json, parsed to what nlohmann/json gives the C++ runner: besides bad JSON, it refuses
    NaN and Infinity, text that is not Unicode (lone UTF-16 surrogate escapes), NUL characters,
    and size, nesting and numbers beyond read_json_text's bounds. A UTF-8 BOM is skipped."""
    def constant(name: str):
        raise ValueError(f"{path}: expected JSON, found {name}")

    with reading(path, "serving manifest"):
        data = read_json_text(path)
        manifest = json.loads(data.decode("utf-8-sig"), parse_constant=constant)
        _check_json_values(manifest, path)
    if not isinstance(manifest, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return manifest


def _check_json_values(value, path: str) -> None:
    """What Python's json takes and nlohmann/json (or a C string) does not: unpaired surrogates
    and NUL characters in strings."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{path}: expected text, found an unpaired UTF-16 surrogate escape") from None
        if "\0" in value:
            raise ValueError(f"{path}: expected text without NUL characters")
    elif isinstance(value, (dict, list)):
        for item in [*value, *value.values()] if isinstance(value, dict) else value:
            _check_json_values(item, path)


def string_value(mapping: dict, key: str, path: str, parent: str = "") -> str:
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


def check_head(head, path: str) -> None:
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


def check_manifest(manifest: dict, path: str) -> None:
    """The checks that need no graph, in the order of tagger.cc's ParseManifest (the same message first)."""
    graph = string_value(manifest, "graph", path)
    if graph in ("", ".", "..") or "/" in graph:
        raise ValueError(f'{path}: expected "graph" to be a file name inside the folder, found "{graph}"')
    string_value(manifest, "init_op", path)
    inputs, outputs = _object(manifest, "inputs", path), _object(manifest, "outputs", path)
    columns = manifest.get("feature_columns")
    if not isinstance(columns, list) or not all(type(c) is int and 1 <= c <= MAX_FEATURE_COLUMN for c in columns):
        raise ValueError(f'{path}: expected "feature_columns" to be a list of column numbers from 1 to {MAX_FEATURE_COLUMN}')
    for key in ("words", "lengths"):
        string_value(inputs, key, path, "inputs")
    if columns:
        string_value(inputs, "features", path, "inputs")
    elif "features" in inputs:
        raise ValueError(f'{path}: expected no "features" in "inputs", as "feature_columns" is empty')
    context_words = manifest.get("context_words", 0)  # absent in folders written before models read document context
    if type(context_words) is not int or not 0 <= context_words <= MAX_CONTEXT_WORDS:
        raise ValueError(f'{path}: expected "context_words" to be a whole number from 0 to {MAX_CONTEXT_WORDS}')
    for key in CONTEXT_INPUTS:
        if context_words:
            string_value(inputs, key, path, "inputs")
        elif key in inputs:
            raise ValueError(f'{path}: expected no "{key}" in "inputs", as "context_words" is 0')
    libraries = manifest.get("op_libraries", [])
    if not isinstance(libraries, list) or not all(isinstance(name, str) and name not in ("", ".", "..")
                                                   and "/" not in name for name in libraries):
        raise ValueError(f'{path}: expected "op_libraries" to be a list of file names')
    if "tokenizer" in manifest:
        tokenizer = _object(manifest, "tokenizer", path)
        string_value(_object(tokenizer, "inputs", path), "text", path, "tokenizer inputs")
        for key in TOKENIZER_OUTPUTS:
            string_value(_object(tokenizer, "outputs", path), key, path, "tokenizer outputs")
    if "head" in manifest:
        check_head(manifest["head"], path)
        string_value(outputs, "emissions", path, "outputs")
    else:
        for key in ("tags", "confidence"):
            string_value(outputs, key, path, "outputs")


def read_frozen_files(folder: str) -> tuple[Config, dict, str, str]:
    """-> (config, manifest, the manifest's path, the graph's path) of a frozen folder; an error
    names a file that is missing or malformed."""
    config_path = file_inside(folder, model_folder.CONFIG, "config file")
    config = Config.load(config_path)
    manifest_path = file_inside(folder, model_folder.MANIFEST, "serving manifest")
    manifest = read_manifest(manifest_path)
    check_manifest(manifest, manifest_path)
    # The Python loaders read the columns from config.json, the C API from serving.json.
    if manifest["feature_columns"] != config.feature_columns:
        raise ValueError(f'{manifest_path}: expected "feature_columns" {config.feature_columns} as in {config_path}, '
                         f'found {manifest["feature_columns"]}')
    if manifest.get("context_words", 0) != config.context_words:
        raise ValueError(f'{manifest_path}: expected "context_words" {config.context_words} as in {config_path}, '
                         f'found {manifest.get("context_words", 0)}')
    return config, manifest, manifest_path, file_inside(folder, manifest["graph"], "frozen graph")
