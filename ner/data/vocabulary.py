"""The vocabularies a model reads strings with (words, characters, entity types, feature-column
values) and its pretrained embedding matrix: the folder embvec.py writes and every model folder
holds a copy of. Ids 0 and 1 of every vocabulary are padding and unknown."""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np

from ner import model_folder
from ner.model_folder import reading

PAD, UNK = "<pad>", "<unk>"
RESERVED = 2  # rows/ids 0 and 1 of every vocabulary are padding and unknown
UNKNOWN_ID = 1


@dataclass
class Vocabulary:
    """What a model needs to turn strings into ids; ids start at RESERVED."""
    words: list[str]
    chars: list[str]
    entity_types: list[str]
    columns: dict[int, list[str]]
    meta: dict
    folder: str

    def embeddings(self) -> np.ndarray:
        path = os.path.join(self.folder, model_folder.EMBEDDINGS)
        with reading(path, "embedding matrix"):  # allow_pickle=False: a model folder never runs code
            return np.load(path, allow_pickle=False)

    @property
    def files(self) -> list[str]:
        return vocabulary_files(self.columns)


def vocabulary_files(columns) -> list[str]:
    """The files of a vocabulary folder whose meta.json lists these feature columns."""
    return [model_folder.WORDS, model_folder.CHARS, model_folder.ENTITY_TYPES, model_folder.EMBEDDINGS,
            model_folder.VOCABULARY_META] + [model_folder.column_vocabulary(i) for i in columns]


def write_list(path: str, items, reserved: bool = True):
    with open(path, "w", encoding="utf-8") as f:
        if reserved:
            f.write(f"{PAD}\n{UNK}\n")
        for item in items:
            f.write(item + "\n")


def _read_list(path: str, reserved: bool = True) -> list[str]:
    try:
        with open(path, encoding="utf-8") as f:
            items = f.read().split("\n")[:-1]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: vocabulary file missing (run embvec.py, or the model folder is incomplete)") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: corrupt vocabulary file: invalid UTF-8 at byte {e.start}") from None
    if reserved:
        if items[:RESERVED] != [PAD, UNK]:
            raise ValueError(f"{path}:1: expected the reserved entries {PAD} and {UNK} first")
    first_line = {}
    for line, item in enumerate(items, 1):
        if item in first_line:  # ids would collide: the graph's tables refuse duplicate keys
            raise ValueError(f'{path}:{line}: "{item}" again (first on line {first_line[item]}); each entry must be '
                             f"on one line only: {FIX}")
        first_line[item] = line
    return items[RESERVED:] if reserved else items


# What a vocabulary whose files no longer fit each other needs.
FIX = "restore the file, or write the vocabularies again with embvec.py (and train again on them)"


def _embedding_shape(path: str) -> tuple:
    """embeddings.npy's shape, read from its header (the model reads the matrix itself)."""
    headers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    with reading(path, "embedding matrix"), open(path, "rb") as f:
        shape, _, dtype = headers[np.lib.format.read_magic(f)](f)
    if dtype.kind != "f":  # a pickled array among others: no loader runs code from a file
        raise ValueError(f"{path}: expected a matrix of floats, found dtype {dtype}; {FIX}")
    return shape


def _check_fit(vocab: Vocabulary, embeddings: bool) -> None:
    """One row of embeddings.npy per line of words.txt (when the folder has it), and the sizes meta.json records."""
    meta_path = os.path.join(vocab.folder, model_folder.VOCABULARY_META)
    words_path = os.path.join(vocab.folder, model_folder.WORDS)
    embeddings_path = os.path.join(vocab.folder, model_folder.EMBEDDINGS)
    shape = _embedding_shape(embeddings_path) if embeddings else None
    lines = len(vocab.words) + RESERVED
    if embeddings and (len(shape) != 2 or shape[0] != lines):
        raise ValueError(f"{words_path}: {lines} lines, but {embeddings_path} has shape {list(shape)}, one row per "
                         f"line: {FIX}")
    if embeddings and shape[1] != vocab.meta["dim"]:
        raise ValueError(f'{embeddings_path}: rows of {shape[1]} numbers, but {meta_path} says "dim" {vocab.meta["dim"]}: '
                         f"{FIX}")
    recorded = [vocab.meta.get(key) for key in ("num_pretrained", "num_oov")]
    if None not in recorded and sum(recorded) != len(vocab.words):
        raise ValueError(f'{words_path}: {len(vocab.words)} words after {PAD} and {UNK}, but {meta_path} says '
                         f'"num_pretrained" {recorded[0]} + "num_oov" {recorded[1]}: {FIX}')


def load_vocabulary(folder: str, embeddings: bool = True) -> Vocabulary:
    """embeddings=False: a folder without embeddings.npy (an ONNX folder: the vectors are inside its model)."""
    meta_path = os.path.join(folder, model_folder.VOCABULARY_META)
    meta = model_folder.read_json(meta_path, f"missing; is {folder} an embvec.py output or a model folder?")
    if not all(key in meta for key in ("columns", "dim", "num_oov")):
        raise ValueError(f"{meta_path}: corrupt: expected an object with columns, dim and num_oov")
    columns = {int(i): _read_list(os.path.join(folder, model_folder.column_vocabulary(i))) for i in meta["columns"]}
    vocab = Vocabulary(
        words=_read_list(os.path.join(folder, model_folder.WORDS)),
        chars=_read_list(os.path.join(folder, model_folder.CHARS)),
        entity_types=_read_list(os.path.join(folder, model_folder.ENTITY_TYPES), reserved=False),
        columns=columns, meta=meta, folder=folder)
    _check_fit(vocab, embeddings)
    return vocab


def copy_vocabulary(vocab: Vocabulary, folder: str):
    for name in vocab.files:
        shutil.copyfile(os.path.join(vocab.folder, name), os.path.join(folder, name))
