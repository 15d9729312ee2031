"""A model folder, its export and its frozen folder with a file missing or corrupt: loading stops
with FileNotFoundError or ValueError naming the file, never another exception; a frozen folder's
serving.json that names files outside the folder or does not describe its graph is refused when
loaded (test_cc.py checks that the C++ runner refuses the same manifests with the same messages);
and nothing in a model folder can run code when loaded (no pickles)."""
import ast
import json
import os
import shutil

import numpy as np
import pytest

from ner import integrity, model_folder
from ner.serving.loaders import load_model

# Not conftest's ROOT: test_cc.py imports this module also when it runs as a script.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Files the Python loaders never read, nor the integrity manifest lists: the training state,
# TensorBoard logs, and the folder's bookkeeping (its marker, train.py's lock).
UNREAD = ("checkpoints/last/", "logs/", "history.jsonl", ".")


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
    if relative.startswith("checkpoints/best/") and relative != model_folder.TRAINED_CONFIG:
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
        unread = relative.startswith(UNREAD)
        for how in ("missing", "corrupt"):
            # Folders written before they kept an integrity manifest load without it (with a warning).
            tolerated = unread or (how == "missing" and relative == model_folder.INTEGRITY)
            copy = str(tmp_path / f"{relative.replace('/', '_')}-{how}")
            shutil.copytree(source, copy)
            damage(os.path.join(copy, relative), how)
            if tolerated:
                load_model(copy)
                continue
            with pytest.raises((FileNotFoundError, ValueError)) as error:
                load_model(copy)
            assert named_in(str(error.value), relative), (relative, how, str(error.value))
            assert str(error.value).startswith(copy), str(error.value)
            shutil.rmtree(copy)


# Damages of a frozen folder's serving.json (or of the files it names): each is a function
# (folder, outside) -> the file, relative to the folder, that the refusal must name; `outside` is
# an empty folder beside the frozen folder.

def edit_manifest(change):
    def damage(folder, outside):
        path = os.path.join(folder, "serving.json")
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
        change(manifest)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(manifest, f)
        return "serving.json"
    return damage


def edit_text(edit):
    def damage(folder, outside):
        path = os.path.join(folder, "serving.json")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        with open(path, "w", encoding="utf-8") as f:
            f.write(edit(text))
        return "serving.json"
    return damage


def with_member(raw_json: str):
    """serving.json with a first member "extra" holding raw_json, written as is."""
    return edit_text(lambda text: text.replace("{", '{"extra": ' + raw_json + ", ", 1))


def graph_outside(absolute: bool):
    """"graph" names a good copy of graph.pb outside the folder."""
    def damage(folder, outside):
        target = os.path.join(outside, "graph.pb")
        shutil.copyfile(os.path.join(folder, "graph.pb"), target)
        return edit_manifest(lambda m: m.update(graph=target if absolute else os.path.relpath(target, folder)))(folder, outside)
    return damage


def graph_in_subfolder(folder, outside):
    os.mkdir(os.path.join(folder, "sub"))
    os.rename(os.path.join(folder, "graph.pb"), os.path.join(folder, "sub", "graph.pb"))
    return edit_manifest(lambda m: m.update(graph="sub/graph.pb"))(folder, outside)


def graph_a_folder(folder, outside):
    os.mkdir(os.path.join(folder, "sub"))
    edit_manifest(lambda m: m.update(graph="sub"))(folder, outside)
    return "sub"


def link_out(name: str):
    """The folder's `name` becomes a link to a good copy of it outside the folder."""
    def damage(folder, outside):
        target = os.path.join(outside, name)
        os.rename(os.path.join(folder, name), target)
        os.symlink(target, os.path.join(folder, name))
        return name
    return damage


def resize(values: list, size: int, fill) -> list:
    return (values + [fill] * size)[:size]


def head_for(delta: int):
    """A CRF head with `delta` more tags than the graph's emission scores, and scores to match."""
    def change(manifest):
        head = manifest["head"]
        n = len(head["tags"]) + delta
        head["tags"] = resize(head["tags"], n, "B-EXTRA")
        head["transitions"] = resize([resize(row, n, 0.0) for row in head["transitions"]], n, [0.0] * n)
        head["start"], head["end"] = resize(head["start"], n, 0.0), resize(head["end"], n, 0.0)
    return edit_manifest(change)


def ragged(rows: list) -> list:
    """The same numbers, one moved from the second row to the first."""
    return [rows[0] + rows[1][:1], rows[1][1:]] + rows[2:]


def without(key: str, within: str = ""):
    return edit_manifest(lambda m: (m[within] if within else m).pop(key))


def setting(key: str, value, within: str = ""):
    return edit_manifest(lambda m: (m[within] if within else m).update({key: value}))


# Refused by both loaders with the same message.
BAD_MANIFESTS = {
    "graph outside through ..": graph_outside(absolute=False),
    "graph outside, absolute": graph_outside(absolute=True),
    "graph in a subfolder": graph_in_subfolder,
    "graph .": setting("graph", "."),
    "graph empty": setting("graph", ""),
    "graph a folder": graph_a_folder,
    "graph.pb a link out": link_out("graph.pb"),
    "serving.json a link out": link_out("serving.json"),
    "head lists fewer tags": edit_manifest(lambda m: m["head"].update(tags=m["head"]["tags"][:-1])),
    "head for fewer tags than the graph emits": head_for(-1),
    "head for more tags than the graph emits": head_for(+1),
    "transitions flat": edit_manifest(lambda m: m["head"].update(transitions=sum(m["head"]["transitions"], []))),
    "transitions ragged": edit_manifest(lambda m: m["head"].update(transitions=ragged(m["head"]["transitions"]))),
    "transitions beyond float32": edit_manifest(lambda m: m["head"]["transitions"][0].__setitem__(0, 1e39)),
    "start short": edit_manifest(lambda m: m["head"].update(start=m["head"]["start"][:-1])),
    "end not numbers": edit_manifest(lambda m: m["head"].update(end=["0"] * len(m["head"]["end"]))),
    "head type unknown": edit_manifest(lambda m: m["head"].update(type="maxent")),
    "head null": setting("head", None),
    "head tags not strings": edit_manifest(lambda m: m["head"].update(tags=list(range(len(m["head"]["tags"]))))),
    "head tags empty": edit_manifest(lambda m: m["head"].update(tags=[])),
    "no graph": without("graph"),
    "no init_op": without("init_op"),
    "no inputs": without("inputs"),
    "no outputs": without("outputs"),
    "no feature_columns": without("feature_columns"),
    "no words": without("words", "inputs"),
    "no lengths": without("lengths", "inputs"),
    "no emissions for the head": without("emissions", "outputs"),
    "graph a number": setting("graph", 5),
    "init_op a list": setting("init_op", ["init_tables"]),
    "inputs a list": edit_manifest(lambda m: m.update(inputs=list(m["inputs"].values()))),
    "outputs a string": setting("outputs", "Identity:0"),
    "feature_columns a string": setting("feature_columns", "1"),
    "feature_columns 2.0": setting("feature_columns", [2.0]),
    "feature_columns 0": setting("feature_columns", [0]),
    "feature_columns true": setting("feature_columns", [True]),
    "feature_columns without features": setting("feature_columns", [1]),
    "features without feature_columns": edit_manifest(lambda m: m["inputs"].update(features=m["inputs"]["words"])),
    "context_words a string": setting("context_words", "16"),
    "context_words negative": setting("context_words", -1),
    "context_words 16.0": setting("context_words", 16.0),
    "context_words true": setting("context_words", True),
    "context_words beyond the bound": setting("context_words", (1 << 20) + 1),
    "context_words without left_context": setting("context_words", 16),
    "context_words without right_context": edit_manifest(
        lambda m: (m.update(context_words=16), m["inputs"].update(left_context=m["inputs"]["words"]))),
    "left_context without context_words": edit_manifest(lambda m: m["inputs"].update(left_context=m["inputs"]["words"])),
    "right_context with context_words 0": edit_manifest(
        lambda m: (m.update(context_words=0), m["inputs"].update(right_context=m["inputs"]["words"]))),
    "words a number": setting("words", 0, "inputs"),
    "words no tensor name": setting("words", "words", "inputs"),
    "words not in the graph": setting("words", "nowhere:0", "inputs"),
    "lengths a string tensor": edit_manifest(lambda m: m["inputs"].update(lengths=m["inputs"]["words"])),
    "emissions past the outputs": edit_manifest(lambda m: m["outputs"].update(emissions=m["outputs"]["emissions"][:-1] + "7")),
    "init_op not in the graph": setting("init_op", "no_such_op"),
    "op_libraries a string": setting("op_libraries", "_regex_split_ops.so"),
    "op_libraries a path": setting("op_libraries", ["../_regex_split_ops.so"]),
    "op_libraries ..": setting("op_libraries", [".."]),
    "op_libraries a number": setting("op_libraries", [5]),
    "tokenizer a list": setting("tokenizer", []),
    "tokenizer without inputs": without("inputs", "tokenizer"),
    "tokenizer inputs a string": edit_manifest(lambda m: m["tokenizer"].update(inputs="tokenize/text:0")),
    "tokenizer without text": edit_manifest(lambda m: m["tokenizer"]["inputs"].pop("text")),
    "tokenizer without outputs": without("outputs", "tokenizer"),
    "tokenizer without ends": edit_manifest(lambda m: m["tokenizer"]["outputs"].pop("ends")),
    "tokenizer lengths a number": edit_manifest(lambda m: m["tokenizer"]["outputs"].update(lengths=1)),
    "tokenizer text not in the graph": edit_manifest(lambda m: m["tokenizer"]["inputs"].update(text="nowhere:0")),
    "tokenizer text no tensor name": edit_manifest(lambda m: m["tokenizer"]["inputs"].update(text="text")),
    "tokenizer tokens an int32 tensor": edit_manifest(
        lambda m: m["tokenizer"]["outputs"].update(tokens=m["tokenizer"]["outputs"]["lengths"])),
    "tokenizer starts a string tensor": edit_manifest(
        lambda m: m["tokenizer"]["outputs"].update(starts=m["tokenizer"]["outputs"]["tokens"])),
    "tokenizer ends past the outputs": edit_manifest(
        lambda m: m["tokenizer"]["outputs"].update(ends=m["tokenizer"]["outputs"]["ends"].split(":")[0] + ":7")),
    "not an object": edit_text(lambda text: f"[{text}]"),
    "nested 65 deep": with_member("[" * 64 + "]" * 64),
    # Issue 29 case 18: each parser refused these in its own words (RecursionError, "nested at most 64").
    "nested 5,000 deep": with_member("[" * 5000 + "]" * 5000),
    "a 5,001-digit number": with_member("1" * 5001),
    "a 101-character number": with_member("-0." + "5" * 98),
    "a number beyond a double": with_member("1e400"),
    "an integer beyond a double": with_member("1" * 400),
    "a NUL character": with_member('"a\\u0000b"'),
    "larger than 1 MiB": edit_text(lambda text: text + " " * (1 << 20)),
}

# JSON that Python's json takes and nlohmann/json refuses as it parses, in its own words.
BAD_JSON = {
    "NaN": with_member("NaN"),
    "-Infinity": with_member("-Infinity"),
    "an unpaired surrogate": with_member('"\\ud800"'),
}

# Emission scores whose width the graph's static shape leaves open (the confidences' tensor):
# loading takes them, tagging checks each batch.
SCORES_OF_OPEN_WIDTH = edit_manifest(lambda m: m["outputs"].update(emissions=m["outputs"]["confidence"]))


def damaged_copy(source: str, tmp_path, damage) -> tuple[str, str]:
    """-> (a copy of the folder `source` with `damage` done, the path of the file its refusal must name).
    The copy's integrity manifest is written again after the damage: these are folders as a faulty
    writer would leave them, which the integrity check alone would not catch (test_integrity.py
    damages folders after they were written)."""
    folder, outside = str(tmp_path / "frozen"), str(tmp_path / "outside")
    shutil.copytree(source, folder)
    os.mkdir(outside)
    named = os.path.join(folder, damage(folder, outside))
    integrity.seal_artifact(folder, integrity.read(os.path.join(folder, model_folder.INTEGRITY))["written_by"])
    return folder, named


@pytest.mark.parametrize("damage", [*BAD_MANIFESTS.values(), *BAD_JSON.values()], ids=[*BAD_MANIFESTS, *BAD_JSON])
def test_a_bad_manifest_is_refused_naming_the_file(damage, frozen_dir, tmp_path):
    folder, named = damaged_copy(frozen_dir, tmp_path, damage)
    with pytest.raises((FileNotFoundError, ValueError)) as error:
        load_model(folder)
    assert str(error.value).startswith(f"{named}: expected "), str(error.value)


def test_feature_columns_that_differ_from_the_config_are_refused(frozen_dir, tmp_path):
    """The Python loaders take the columns from config.json, the C API from serving.json."""
    folder, named = damaged_copy(frozen_dir, tmp_path, edit_manifest(
        lambda m: m.update(feature_columns=[1], inputs={**m["inputs"], "features": "words:0"})))
    with pytest.raises(ValueError) as error:
        load_model(folder)
    assert str(error.value).startswith(f'{named}: expected "feature_columns" [] as in {folder}/config.json, found [1]')


def test_context_words_that_differ_from_the_config_are_refused(frozen_dir, tmp_path):
    """The Python loaders take "context_words" from config.json too; serving.json must agree."""
    folder, named = damaged_copy(frozen_dir, tmp_path, edit_manifest(lambda m: (
        m.update(context_words=16), m["inputs"].update(left_context=m["inputs"]["words"], right_context=m["inputs"]["words"]))))
    with pytest.raises(ValueError) as error:
        load_model(folder)
    assert str(error.value) == f'{named}: expected "context_words" 0 as in {folder}/config.json, found 16'


def test_scores_that_do_not_fit_the_head_are_refused_when_tagging(frozen_dir, tmp_path):
    folder, named = damaged_copy(frozen_dir, tmp_path, SCORES_OF_OPEN_WIDTH)
    model = load_model(folder)
    with pytest.raises(ValueError) as error:
        model.predict(np.array([[b"Hello", b"world"]], dtype=object), np.array([2], np.int32), None)
    assert str(error.value).startswith(f"{named}: expected the graph's emissions "), str(error.value)


def test_a_pickled_embedding_matrix_is_refused(model_dir, tmp_path):
    """In a folder from before integrity manifests (whose check would refuse the changed file first)."""
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    os.remove(os.path.join(copy, model_folder.INTEGRITY))
    np.save(os.path.join(copy, "embeddings.npy"), np.array([{"code": "would run"}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="embeddings.npy: expected a matrix of floats, found dtype object"):
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
