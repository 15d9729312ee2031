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


def test_replace_files_keeps_what_it_does_not_write(tmp_path):
    """A staging folder inside the target, then a rename per file: a failed fill leaves the old
    files, a foreign file is never touched, a file of the kind that the new output lacks goes."""
    target = tmp_path / "frozen"
    with model_folder.writing(str(target), model_folder.FROZEN_KIND, "--out"):
        model_folder.replace_files(str(target), model_folder.FROZEN_KIND,
                                   lambda folder: open(os.path.join(folder, "graph.pb"), "w").write("1"))
    assert sorted(os.listdir(target)) == sorted([model_folder.LOCK, model_folder.MARKER, "graph.pb"])

    def failing(folder):
        open(os.path.join(folder, "graph.pb"), "w").write("2")
        raise RuntimeError("interrupted")
    with pytest.raises(RuntimeError):
        model_folder.replace_files(str(target), model_folder.FROZEN_KIND, failing)
    assert (target / "graph.pb").read_text() == "1" and len(os.listdir(target)) == 3
    (target / "serving.json").write_text("{}")  # of the kind, but stale
    (target / "notes.txt").write_text("mine")
    model_folder.replace_files(str(target), model_folder.FROZEN_KIND,
                               lambda folder: open(os.path.join(folder, "graph.pb"), "w").write("3"))
    assert sorted(os.listdir(target)) == sorted([model_folder.LOCK, model_folder.MARKER, "graph.pb", "notes.txt"])
    with pytest.raises(ValueError, match="--out holds notes.txt, which freeze.py never writes"):
        model_folder.check_writable(str(target), model_folder.FROZEN_KIND, "--out")


def test_leftovers_of_a_killed_write_are_the_kind_s_own(tmp_path):
    folder = tmp_path / "emb"
    folder.mkdir()
    (folder / ".words.txt.tmp-123-0").write_text("half")
    (folder / (model_folder.STAGING + "abc")).mkdir()
    (folder / model_folder.WORDS).write_text("w\n")
    (folder / model_folder.VOCABULARY_META).write_text("{}")
    model_folder.check_writable(str(folder), model_folder.EMBVEC_KIND, "--out")  # from before the marker
    (folder / ".notes.txt.tmp-123-0").write_text("half")
    with pytest.raises(ValueError, match=r"holds \.notes\.txt\.tmp-123-0"):
        model_folder.check_writable(str(folder), model_folder.EMBVEC_KIND, "--out")


def test_a_second_writer_is_refused_with_the_holder_s_pid(tmp_path):
    with model_folder.locked(str(tmp_path), "train.py", "--model_dir"):
        with pytest.raises(ValueError, match=rf"train.py \(PID {os.getpid()}\) is writing this folder"):
            with model_folder.locked(str(tmp_path), "export.py", "--model_dir"):
                pass
    with model_folder.locked(str(tmp_path), "export.py", "--model_dir"):  # released: taken again
        pass
