"""load_vocabulary checks that a vocabulary folder's files fit each other (issue 29 cases 12 and
16): one row of embeddings.npy per line of words.txt, its width and the counts as meta.json
records them, and no line twice in any list; each refusal is one line naming the file (and the
line)."""
import json
import os
import shutil

import numpy as np
import pytest

from ner.data.vocabulary import load_vocabulary

FIX = "restore the file, or write the vocabularies again with embvec.py (and train again on them)"


@pytest.fixture
def vocab_dir(emb_dir, tmp_path):
    folder = str(tmp_path / "vocab")
    shutil.copytree(emb_dir, folder)
    return folder


def append_line(path, line):
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def lines_of(path):
    return open(path, encoding="utf-8").read().splitlines()


def count_one_more_oov_word(vocab_dir) -> dict:
    """meta.json with num_oov one higher; returns the meta before."""
    meta_path = os.path.join(vocab_dir, "meta.json")
    meta = json.load(open(meta_path))
    json.dump({**meta, "num_oov": meta["num_oov"] + 1}, open(meta_path, "w"))
    return meta


def refusal(vocab_dir) -> str:
    """The message load_vocabulary refuses the folder with."""
    with pytest.raises(ValueError) as error:
        load_vocabulary(vocab_dir)
    return str(error.value)


def test_an_intact_vocabulary_loads(vocab_dir):
    vocab = load_vocabulary(vocab_dir)
    assert len(vocab.words) + 2 == np.load(os.path.join(vocab_dir, "embeddings.npy")).shape[0]


@pytest.mark.parametrize("name", ["words.txt", "chars.txt", "entity_types.txt", "column1.txt"])
def test_a_line_twice_is_named_with_both_lines(name, vocab_dir):
    path = os.path.join(vocab_dir, name)
    lines = lines_of(path)
    append_line(path, lines[-1])
    if name == "words.txt":  # so that the rows still fit: only the duplicate is wrong
        matrix = np.load(os.path.join(vocab_dir, "embeddings.npy"))
        np.save(os.path.join(vocab_dir, "embeddings.npy"), np.concatenate([matrix, matrix[-1:]]))
        count_one_more_oov_word(vocab_dir)
    assert refusal(vocab_dir) == (f'{path}:{len(lines) + 1}: "{lines[-1]}" again (first on line {len(lines)}); '
                                f"each entry must be on one line only: {FIX}")


def test_a_reserved_entry_again_is_a_duplicate(vocab_dir):
    path = os.path.join(vocab_dir, "chars.txt")
    append_line(path, "<unk>")
    with pytest.raises(ValueError, match=f'{path}:{len(lines_of(path))}: "<unk>" again \\(first on line 2\\)'):
        load_vocabulary(vocab_dir)


def test_embedding_rows_must_be_the_lines_of_words_txt(vocab_dir):
    path, embeddings = os.path.join(vocab_dir, "words.txt"), os.path.join(vocab_dir, "embeddings.npy")
    rows, dim = np.load(embeddings).shape
    kept = lines_of(path)[:5]
    open(path, "w", encoding="utf-8").write("\n".join(kept) + "\n")
    assert refusal(vocab_dir) == f"{path}: 5 lines, but {embeddings} has shape [{rows}, {dim}], one row per line: {FIX}"


def test_embedding_width_must_be_meta_dim(vocab_dir):
    embeddings = os.path.join(vocab_dir, "embeddings.npy")
    matrix = np.load(embeddings)
    np.save(embeddings, matrix[:, :-1])
    assert refusal(vocab_dir) == (f'{embeddings}: rows of {matrix.shape[1] - 1} numbers, but '
                                f'{os.path.join(vocab_dir, "meta.json")} says "dim" {matrix.shape[1]}: {FIX}')


def test_word_counts_must_be_meta_counts(vocab_dir):
    meta_path = os.path.join(vocab_dir, "meta.json")
    meta = count_one_more_oov_word(vocab_dir)
    with pytest.raises(ValueError, match=f'words.txt: .* words after <pad> and <unk>, but {meta_path} says '
                                         f'"num_pretrained" {meta["num_pretrained"]} \\+ "num_oov" {meta["num_oov"] + 1}'):
        load_vocabulary(vocab_dir)


def test_an_embedding_matrix_of_objects_is_refused_unread(vocab_dir):
    embeddings = os.path.join(vocab_dir, "embeddings.npy")
    np.save(embeddings, np.array([{"code": "would run"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=f"{embeddings}: expected a matrix of floats, found dtype object"):
        load_vocabulary(vocab_dir)
