"""A model folder proves its integrity (issue 29): train.py, export.py and freeze.py write
integrity.json, the size and SHA-256 of every file the loaders read; a file changed since is
named by inference.py (one line, exit 1, nothing written), whichever form of the folder it
loads; a folder from before integrity manifests loads with a one-line warning. Vocabularies are
checked against each other wherever they are read: train.py --emb_dir (case 12: words.txt cut to
5 lines) and model folders (case 16: a duplicate line in entity_types.txt). test_cc.py checks that
the C API and the C++ runner say the same."""
import hashlib
import json
import os
import shutil

import pytest
from test_commands import assert_user_error, run, stderr_lines

from conftest import TINY_CONFIG, folder_state
from ner import integrity, model_folder


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
    import export
    out = str(tmp_path_factory.mktemp("export") / "tiny")
    export.main(["--model_dir", model_dir, "--out", out])
    return out



def listed(folder) -> dict:
    with open(os.path.join(folder, model_folder.INTEGRITY), encoding="utf-8") as f:
        return json.load(f)


def test_each_folder_lists_the_files_its_loaders_read(model_dir, export_dir, frozen_dir):
    manifest = listed(model_dir)
    assert manifest["written_by"] == "train.py"
    names = set(manifest["files"])
    best = {os.path.join(model_folder.BEST_CHECKPOINTS, name) for name in os.listdir(
        os.path.join(model_dir, model_folder.BEST_CHECKPOINTS))}
    columns = json.load(open(os.path.join(model_dir, "meta.json")))["columns"]
    vocabularies = {"words.txt", "chars.txt", "entity_types.txt", "embeddings.npy", "meta.json"} | {
        f"column{i}.txt" for i in columns}
    # config.json's training keys may be edited (restore_best checks the rest against checkpoints/best/config.json).
    assert names == vocabularies | best and model_folder.TRAINED_CONFIG in names
    for folder, writer in ((export_dir, "export.py"), (frozen_dir, "freeze.py")):
        manifest = listed(folder)
        assert manifest["written_by"] == writer
        files = {os.path.relpath(path, folder) for path, state in folder_state(folder).items() if state != "folder"}
        assert set(manifest["files"]) == {name for name in files
                                          if not name.startswith(".") and name != model_folder.INTEGRITY}
    for folder in (model_dir, export_dir, frozen_dir):
        for name, entry in listed(folder)["files"].items():
            path = os.path.join(folder, name)
            assert entry["size"] == os.path.getsize(path)
            assert entry["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest()


def flip_byte(path):
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 1
    open(path, "wb").write(bytes(data))


def keep_lines(count):
    def damage(path):
        lines = open(path, "rb").read().split(b"\n")
        open(path, "wb").write(b"\n".join(lines[:count]) + b"\n")
    return damage


def changed(folder, name, writer, size=None):
    path, manifest = os.path.join(folder, name), os.path.join(folder, model_folder.INTEGRITY)
    what = (f"{os.path.getsize(path)} bytes, but {manifest} says {size}" if size is not None
            else f"its SHA-256 is not the one {manifest} lists")
    return f"{path}: {what}: the file changed since {writer} wrote it; restore it, or write the folder again with {writer}"


# (folder fixture, file, damage); words.txt cut to 5 lines is issue 29's case 12, which tagged at F1 57.
DAMAGES = [("model_dir", "words.txt", keep_lines(5)), ("model_dir", "embeddings.npy", flip_byte),
           ("model_dir", "checkpoints/best/config.json", flip_byte), ("export_dir", "variables/variables.index", flip_byte),
           ("frozen_dir", "graph.pb", flip_byte), ("frozen_dir", "serving.json", keep_lines(3))]


@pytest.mark.parametrize("kind, name, damage", DAMAGES, ids=[f"{kind}-{name}" for kind, name, _ in DAMAGES])
def test_inference_names_a_file_changed_since_it_was_written(kind, name, damage, corpus_dir, request, tmp_path):
    source = request.getfixturevalue(kind)
    folder = str(tmp_path / "folder")
    shutil.copytree(source, folder)
    size = listed(folder)["files"][name]["size"]
    damage(os.path.join(folder, name))
    before = folder_state(folder)
    writer = listed(folder)["written_by"]
    expected = changed(folder, name, writer, size if os.path.getsize(os.path.join(folder, name)) != size else None)
    output = tmp_path / "pred.txt"
    assert_user_error(run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt"),
                          "--output", output), expected)
    assert folder_state(folder) == before and not output.exists()


def test_a_folder_from_before_integrity_manifests_loads_with_one_warning(frozen_dir, corpus_dir, tmp_path):
    folder = str(tmp_path / "frozen")
    shutil.copytree(frozen_dir, folder)
    os.remove(os.path.join(folder, model_folder.INTEGRITY))
    before = folder_state(folder)
    done = run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt"))
    assert done.returncode == 0 and done.stdout.count(b"\n") > 100, done.stderr.decode()
    assert stderr_lines(done) == [integrity.unchecked_warning(folder, "freeze.py")]
    assert integrity.unchecked_warning(folder, "freeze.py") == (
        f"{folder}: warning: no integrity.json, so its files are not checked (written before folders kept one); "
        "write it again with freeze.py to add one")
    assert folder_state(folder) == before


def test_a_duplicate_entity_type_in_an_earlier_model_folder_is_named(model_dir, corpus_dir, tmp_path):
    """Issue 29 case 16 (a FailedPreconditionError traceback before), in a folder without integrity.json."""
    folder = str(tmp_path / "model")
    shutil.copytree(model_dir, folder)
    os.remove(os.path.join(folder, model_folder.INTEGRITY))
    path = os.path.join(folder, model_folder.ENTITY_TYPES)
    types = open(path, encoding="utf-8").read().splitlines()
    open(path, "w", encoding="utf-8").write("\n".join(types + types[:1]) + "\n")
    before = folder_state(folder)
    done = run("inference.py", "--model_dir", folder, "--input", os.path.join(corpus_dir, "test.txt"))
    assert done.returncode == 1 and "Traceback" not in done.stderr.decode()
    assert stderr_lines(done) == [
        integrity.unchecked_warning(folder, "train.py"),
        f'{path}:{len(types) + 1}: "{types[0]}" again (first on line 1); each entry must be on one line only: '
        "restore the file, or write the vocabularies again with embvec.py (and train again on them)"]
    assert folder_state(folder) == before


@pytest.mark.parametrize("name", ["words.txt", "entity_types.txt"])
def test_train_names_damaged_vocabularies(name, corpus_dir, emb_dir, tmp_path):
    """Issue 29 cases 12 and 16 as an embvec.py output given to train.py --emb_dir: words.txt cut to
    its first 5 lines, or a line of entity_types.txt twice."""
    emb = str(tmp_path / "emb")
    shutil.copytree(emb_dir, emb)
    path = os.path.join(emb, name)
    lines = open(path, encoding="utf-8").read().splitlines()
    if name == "words.txt":
        keep_lines(5)(path)
        rows = len(lines)
        expected = (f"{path}: 5 lines, but {os.path.join(emb, 'embeddings.npy')} has shape [{rows}, 8], one row per line: "
                    "restore the file, or write the vocabularies again with embvec.py")
    else:
        open(path, "w", encoding="utf-8").write("\n".join(lines + lines[-1:]) + "\n")
        expected = f'{path}:{len(lines) + 1}: "{lines[-1]}" again (first on line {len(lines)})'
    before = folder_state(emb)
    model = tmp_path / "model"
    assert_user_error(run("train.py", "--data_dir", corpus_dir, "--emb_dir", emb, "--model_dir", model,
                          "--epochs", "1", *TINY_CONFIG), expected)
    assert folder_state(emb) == before and not model.exists()
