"""A model folder, its export and its frozen folder with a file missing or corrupt: loading stops
with FileNotFoundError or ValueError naming the file, never another exception; and nothing in a
model folder can run code when loaded (no pickles)."""
import ast
import os
import shutil

import numpy as np
import pytest

from conftest import ROOT  # noqa: E402
from ner.serving.loaders import load_model

# Files the Python loaders never read: the training state, TensorBoard logs, and what only other
# loaders use (the export's serving.json is for the C API; fingerprint.pb is optional).
UNREAD = ("checkpoints/last/", "logs/", "history.jsonl", "fingerprint.pb", "export-serving.json")


@pytest.fixture(scope="module")
def export_dir(model_dir, tmp_path_factory):
    import export
    out = str(tmp_path_factory.mktemp("export") / "tiny")
    export.main(["--model_dir", model_dir, "--out", out])
    return out


def named_in(message: str, relative: str) -> bool:
    """Whether the error names the file: its path, its checkpoint (prefix or list), or the SavedModel's variables/."""
    if relative.startswith("variables/"):
        return "variables" in message
    if relative.startswith("checkpoints/best/"):
        return "checkpoints/best/ckpt-" in message or "checkpoints/best/checkpoint" in message
    return relative in message


def damage(path: str, how: str):
    if how == "missing":
        os.remove(path)
    else:  # cut in half and followed by bytes no format accepts
        data = open(path, "rb").read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2] + b"\xff\x00\xfe not what was written")


@pytest.mark.parametrize("kind", ["model_dir", "export_dir", "frozen_dir"])
def test_missing_or_corrupt_file_is_an_error_naming_it(kind, request, tmp_path):
    source = request.getfixturevalue(kind)
    files = sorted(os.path.relpath(os.path.join(d, f), source) for d, _, names in os.walk(source) for f in names)
    for relative in files:
        unread = any(relative.startswith(u) or (kind == "export_dir" and f"export-{relative}" == u) for u in UNREAD)
        for how in ("missing", "corrupt"):
            copy = str(tmp_path / f"{relative.replace('/', '_')}-{how}")
            shutil.copytree(source, copy)
            damage(os.path.join(copy, relative), how)
            if unread:
                load_model(copy)
                continue
            with pytest.raises((FileNotFoundError, ValueError)) as error:
                load_model(copy)
            assert named_in(str(error.value), relative), (relative, how, str(error.value))
            assert str(error.value).startswith(copy), str(error.value)
            shutil.rmtree(copy)


def test_a_pickled_embedding_matrix_is_refused(model_dir, tmp_path):
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    np.save(os.path.join(copy, "embeddings.npy"), np.array([{"code": "would run"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="embeddings.npy: corrupt or unreadable embedding matrix.*allow_pickle=False"):
        load_model(copy)


def test_a_config_with_a_bad_value_names_the_file(model_dir, tmp_path):
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    path = os.path.join(copy, "config.json")
    text = open(path).read().replace('"lstm_units": 16', '"lstm_units": "many"')
    open(path, "w").write(text)
    with pytest.raises(ValueError, match=f"{path}: "):
        load_model(copy)


def project_sources():
    """The project's Python files, tests aside (they load no model folder)."""
    for folder, dirs, names in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("tests", "runs", "build", "__pycache__")]
        yield from (os.path.join(folder, name) for name in names if name.endswith(".py"))


def test_no_loader_can_run_code_from_a_file():
    """Every np.load passes allow_pickle=False; nothing uses pickle, marshal, eval or exec."""
    offenders = []
    for path in project_sources():
        tree = ast.parse(open(path, encoding="utf-8").read(), path)
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                offenders += [f"{path}:{node.lineno} imports {m}" for m in modules
                              if m and m.split(".")[0] in ("pickle", "cPickle", "dill", "marshal", "shelve", "joblib")]
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                # The builtins, called bare or through builtins; a method such as torch's Module.eval() is not one.
                owner = getattr(node.func.value, "id", "") if isinstance(node.func, ast.Attribute) else "builtins"
                if name in ("eval", "exec") and owner == "builtins":
                    offenders.append(f"{path}:{node.lineno} calls {name}")
                if name == "load" and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "np":
                    flags = {k.arg: getattr(k.value, "value", None) for k in node.keywords}
                    if flags.get("allow_pickle") is not False:
                        offenders.append(f"{path}:{node.lineno} np.load without allow_pickle=False")
    assert offenders == []
