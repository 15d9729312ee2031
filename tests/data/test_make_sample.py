"""Tests for data/make_sample.py, the synthetic CoNLL-2003-style corpus generator."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "data" / "make_sample.py"
COMMITTED = REPO_ROOT / "data" / "sample"
SPLITS = ("train", "dev", "test")
NER_TYPES = {"PER", "ORG", "LOC", "MISC"}

_spec = importlib.util.spec_from_file_location("make_sample", SCRIPT)
make_sample = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_sample)


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh generation with default arguments, run through the command line."""
    out = tmp_path_factory.mktemp("fresh")
    subprocess.run([sys.executable, str(SCRIPT), "--out", str(out)], check=True, capture_output=True)
    return out


def _read(folder, split):
    return (folder / f"{split}.txt").read_bytes()


def test_generation_is_deterministic(tmp_path):
    sizes = {"train": 300, "dev": 60, "test": 60}
    make_sample.generate(tmp_path / "first", seed=7, sizes=sizes)
    make_sample.generate(tmp_path / "second", seed=7, sizes=sizes)
    for split in SPLITS:
        assert _read(tmp_path / "first", split) == _read(tmp_path / "second", split)


def test_seed_changes_output(tmp_path):
    sizes = {"train": 50, "dev": 10, "test": 10}
    make_sample.generate(tmp_path / "a", seed=1, sizes=sizes)
    make_sample.generate(tmp_path / "b", seed=2, sizes=sizes)
    assert _read(tmp_path / "a", "train") != _read(tmp_path / "b", "train")


@pytest.mark.parametrize("split", SPLITS)
def test_committed_sample_matches_fresh_generation(fresh, split):
    assert _read(COMMITTED, split) == _read(fresh, split)


@pytest.mark.parametrize("split", SPLITS)
def test_document_layout(fresh, split):
    text = _read(fresh, split).decode("utf-8")
    assert text.startswith(make_sample.DOCSTART + "\n\n")
    assert text.endswith("\n\n")  # the last sentence is followed by a blank line
    assert "\n\n\n" not in text  # and sentences by exactly one
    assert f"{make_sample.DOCSTART}\n\n{make_sample.DOCSTART}" not in text  # no empty documents


@pytest.mark.parametrize("split", SPLITS)
def test_four_columns_and_valid_iob2(fresh, split):
    previous_ner, previous_chunk = "O", "O"
    for line in _read(fresh, split).decode("utf-8").split("\n"):
        if not line:
            previous_ner, previous_chunk = "O", "O"
            continue
        columns = line.split(" ")
        assert len(columns) == 4, line
        if line == make_sample.DOCSTART:
            continue
        word, pos, chunk, ner = columns
        assert word and pos
        assert chunk == "O" or chunk[:2] in ("B-", "I-"), line
        if chunk.startswith("I-"):
            assert previous_chunk[2:] == chunk[2:], line
        if ner != "O":
            prefix, entity_type = ner.split("-", 1)
            assert prefix in ("B", "I") and entity_type in NER_TYPES, line
            if prefix == "I":
                assert previous_ner in (f"B-{entity_type}", f"I-{entity_type}"), line
        previous_ner, previous_chunk = ner, chunk


def test_help_lists_flags():
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], check=True, capture_output=True, text=True)
    for flag in ("--out", "--seed", "--train", "--dev", "--test"):
        assert flag in result.stdout


def _entity_names(documents):
    names = set()
    for sentence in (sentence for document in documents for sentence in document):
        for start, (_, _, ner) in enumerate(sentence):
            if ner.startswith("B-"):
                end = start + 1
                while end < len(sentence) and sentence[end][2].startswith("I-"):
                    end += 1
                names.add(" ".join(word for word, _, _ in sentence[start:end]).lower())  # casing varies
    return names


def test_sizes_and_unseen_test_names(tmp_path):
    corpus = make_sample.generate(tmp_path)
    for split, count in make_sample.DEFAULT_SIZES.items():
        assert sum(len(document) for document in corpus[split]) == count
    test_names = _entity_names(corpus["test"])
    unseen = test_names - _entity_names(corpus["train"])
    assert 0.2 < len(unseen) / len(test_names) < 0.45  # about 30% of test names never seen in train
    assert sum((COMMITTED / f"{split}.txt").stat().st_size for split in SPLITS) < 1_000_000
