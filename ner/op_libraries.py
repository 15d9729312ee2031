"""TensorFlow Text's op libraries and model builders, loaded by file: importing tensorflow_text
would load every one of its ops and its whole Python package. serving.json names the libraries an
artifact's graph needs ("op_libraries"), so that the C API loads them before the graph too."""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
from collections.abc import Iterable
from functools import cache

REGEX_SPLIT = "_regex_split_ops.so"               # RegexSplitWithOffsets: the raw-text tokenizer
FAST_BERT_NORMALIZER = "_fast_bert_normalizer.so"  # FastBertNormalize: BERT's text cleaning, lowercasing
FAST_WORDPIECE = "_fast_wordpiece_tokenizer.so"   # FastWordpieceTokenizeWithOffsets: WordPiece
# The op types each library registers, as they appear in a graph.
LIBRARY_OF_OP = {"RegexSplitWithOffsets": REGEX_SPLIT, "FastBertNormalize": FAST_BERT_NORMALIZER,
                 "FastWordpieceTokenizeWithOffsets": FAST_WORDPIECE}


def package_folder() -> str:
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("tensorflow-text is not installed: raw-text tokenization and WordPiece run its ops "
                                  "(make installs it: pip install --no-deps -r requirements-no-deps.txt)")
    return spec.submodule_search_locations[0]


def library_path(name: str) -> str:
    """Where the installed tensorflow-text keeps the op library `name`."""
    if name not in LIBRARY_OF_OP.values():
        raise ValueError(f"op library {name}: unknown (expected one of {', '.join(sorted(set(LIBRARY_OF_OP.values())))})")
    path = os.path.join(package_folder(), "python", "ops", name)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: tensorflow-text's op library {name} missing")
    return path


@cache
def load(name: str):
    """The op library's Python wrappers (its ops are registered from then on)."""
    import tensorflow as tf
    return tf.load_op_library(library_path(name))


def load_all(names: Iterable[str]) -> None:
    for name in names:
        load(name)


def needed_by(graph_defs) -> list[str]:
    """The op libraries whose ops the GraphDefs (and their function libraries) use."""
    ops = set()
    for graph_def in graph_defs:
        ops.update(node.op for node in graph_def.node)
        for function in graph_def.library.function:
            ops.update(node.op for node in function.node_def)
    return sorted({LIBRARY_OF_OP[op] for op in ops if op in LIBRARY_OF_OP})


@cache
def model_builder(name: str):
    """One of tensorflow-text's pybind model builders (e.g. pywrap_fast_wordpiece_tokenizer_model_builder),
    loaded from its file; TensorFlow must be imported first (it links to TensorFlow's libraries)."""
    import tensorflow  # noqa: F401
    path = os.path.join(package_folder(), "core", "pybinds", f"{name}.so")
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location(name, path, loader=loader))
    loader.exec_module(module)
    return module
