import os

import pytest

from ner import model_folder


def test_write_text_replaces_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "out.txt"
    model_folder.write_text(str(path), "old\n")
    model_folder.write_text(str(path), "new\n")
    assert path.read_text() == "new\n"

    def full_disk(*args):
        raise OSError("no space left")
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        model_folder.write_text(str(path), "half")
    assert path.read_text() == "new\n" and os.listdir(tmp_path) == ["out.txt"]


def test_replace_folder_keeps_the_old_folder_when_filling_fails(tmp_path):
    target = tmp_path / "model"
    model_folder.replace_folder(str(target), lambda folder: open(os.path.join(folder, "a"), "w").write("1"))
    assert os.listdir(target) == ["a"]

    def failing(folder):
        open(os.path.join(folder, "b"), "w").write("2")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        model_folder.replace_folder(str(target), failing)
    assert os.listdir(target) == ["a"] and os.listdir(tmp_path) == ["model"]
    model_folder.replace_folder(str(target), lambda folder: open(os.path.join(folder, "c"), "w").write("3"))
    assert os.listdir(target) == ["c"] and os.listdir(tmp_path) == ["model"]
