"""Issue 29, cases 1, 2, 3, 14 and 15: a command writes only into a folder it made (its marker, or
for folders from before the marker, its files) and replaces files one by one; one train.py per
model folder; a run killed at any moment goes on with the same command or --resume; a failed new
run leaves nothing behind; a damaged folder to resume is one line naming the file and the fix."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
from test_commands import assert_user_error, run

from conftest import ROOT, TINY_CONFIG, folder_state
from ner import model_folder


def train_command(corpus_dir, emb_dir, model_dir, *more, epochs=2):
    return [sys.executable, os.path.join(ROOT, "train.py"), "--data_dir", corpus_dir, "--emb_dir", emb_dir,
            "--model_dir", str(model_dir), "--epochs", str(epochs), *TINY_CONFIG, *map(str, more)]


def train(*args, **options):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(train_command(*args, **options), capture_output=True, env=env, timeout=300)


def history_epochs(model_dir):
    with open(os.path.join(model_dir, model_folder.HISTORY), encoding="utf-8") as f:
        return [json.loads(line)["epoch"] for line in f]


# --- case 1: --out onto a folder the command did not write ---------------------------------------

@pytest.mark.parametrize("command, kind", [("freeze.py", model_folder.FROZEN_KIND),
                                           ("export.py", model_folder.EXPORT_KIND)])
def test_artifact_out_holding_a_foreign_file_is_refused(command, kind, model_dir, tmp_path):
    own_file = {model_folder.FROZEN_KIND: model_folder.FROZEN_GRAPH, model_folder.EXPORT_KIND: model_folder.SAVED_MODEL}
    out = tmp_path / "o" / "p"
    out.mkdir(parents=True)
    (out / own_file[kind]).write_bytes(b"")
    (out / "important.txt").write_text("notes\n")
    empty_variables = tmp_path / "q"
    (empty_variables / model_folder.SAVED_VARIABLES).mkdir(parents=True)
    before = folder_state(tmp_path, model_dir)
    assert_user_error(run(command, "--model_dir", model_dir, "--out", out), f"{out}: --out holds important.txt",
                      f"which {command} never writes")
    assert_user_error(run(command, "--model_dir", model_dir, "--out", empty_variables), str(empty_variables))
    assert folder_state(tmp_path, model_dir) == before


def test_freeze_never_writes_into_an_export(model_dir, tmp_path):
    export = tmp_path / "export"
    done = run("export.py", "--model_dir", model_dir, "--out", export)
    assert done.returncode == 0, done.stderr.decode()
    before = folder_state(export, model_dir)
    assert_user_error(run("freeze.py", "--model_dir", model_dir, "--out", export),
                      "is a folder export.py wrote", model_folder.MARKER)
    # An export from before the marker: recognised by its files, as export.py's and not freeze.py's.
    os.remove(export / model_folder.MARKER)
    os.remove(export / model_folder.LOCK)
    assert_user_error(run("freeze.py", "--model_dir", model_dir, "--out", export), "--out holds fingerprint.pb",
                      "(a folder export.py wrote)")
    assert folder_state(export, model_dir) == {path: value for path, value in before.items()
                                        if path not in (str(export / model_folder.MARKER), str(export / model_folder.LOCK))}


def test_an_earlier_output_is_replaced_file_by_file(model_dir, tmp_path):
    export = tmp_path / "export"
    assert run("export.py", "--model_dir", model_dir, "--out", export).returncode == 0
    # A file an older export wrote (another shard) goes; a foreign file stops the command.
    stale = export / model_folder.SAVED_VARIABLES / "variables.data-00001-of-00002"
    stale.write_bytes(b"from an older export")
    done = run("export.py", "--model_dir", model_dir, "--out", export)
    assert done.returncode == 0, done.stderr.decode()
    assert not stale.exists() and [name for name in os.listdir(export) if name.startswith(".ner-staging")] == []
    (export / model_folder.SAVED_VARIABLES / "notes.txt").write_text("mine\n")
    assert_user_error(run("export.py", "--model_dir", model_dir, "--out", export), "variables/notes.txt")
    # Folders written before the marker are still taken by the command that wrote them.
    frozen = tmp_path / "frozen"
    assert run("freeze.py", "--model_dir", model_dir, "--out", frozen).returncode == 0
    os.remove(frozen / model_folder.MARKER)
    done = run("freeze.py", "--model_dir", model_dir, "--out", frozen)
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads((frozen / model_folder.MARKER).read_text())["kind"] == model_folder.FROZEN_KIND


def test_embvec_and_train_refuse_a_folder_with_a_foreign_file(corpus_dir, emb_dir, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / model_folder.WORDS).write_text("mine\n")
    (folder / "important.txt").write_text("notes\n")
    before = folder_state(folder)
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", tmp_path / "none.txt", "--out", folder),
                      "none.txt")
    glove = os.path.join(os.path.dirname(emb_dir), "glove.txt")
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", glove, "--out", folder),
                      "--out holds important.txt", "embvec.py never writes")
    assert_user_error(train(corpus_dir, emb_dir, folder), "--model_dir holds important.txt", "train.py never writes")
    assert folder_state(folder) == before


# --- case 2: one writer per model folder ----------------------------------------------------------

def test_two_runs_into_one_new_folder_one_is_refused(corpus_dir, emb_dir, tmp_path):
    model_dir = tmp_path / "run"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    runs = [subprocess.Popen(train_command(corpus_dir, emb_dir, model_dir, *more, epochs=3), env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for more in (["--seed", "1"], ["--seed", "2", "--set", "lstm_units=32"])]
    results = [(process.pid, process.wait(timeout=300), process.stderr.read().decode()) for process in runs]
    for process in runs:
        process.stdout.close()
        process.stderr.close()
    assert sorted(code for _, code, _ in results) == [0, 1], results
    (winner, _, _), = [result for result in results if result[1] == 0]
    _, _, refused = next(result for result in results if result[1] == 1)
    lines = [line for line in refused.splitlines() if line.strip() and not line.startswith(("WARNING: All", "I0000"))]
    assert lines == [f"{model_dir}: --model_dir: train.py (PID {winner}) is writing this folder; wait until it ends, "
                     "or give another folder"], refused
    # The folder is the winner's alone: its config, its best checkpoint, its history.
    config = json.loads((model_dir / model_folder.CONFIG).read_text())
    assert config == json.loads((model_dir / model_folder.TRAINED_CONFIG).read_text())
    assert history_epochs(model_dir) == [1, 2, 3]
    from ner.serving.loaders import load_model
    assert load_model(str(model_dir)).config.lstm_units == config["lstm_units"]


@pytest.mark.parametrize("command", ["export.py", "freeze.py"])
def test_no_export_while_train_writes_the_model_folder(command, model_dir, tmp_path):
    """export.py and freeze.py hold the model folder's lock while they read its checkpoint."""
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    before = folder_state(folder)
    with model_folder.locked(str(folder), "train.py", "--model_dir"):
        assert_user_error(run(command, "--model_dir", folder),
                          f"{folder}: --model_dir: train.py (PID {os.getpid()}) is writing this folder")
    assert folder_state(folder) == before


# --- case 3: a run killed at any moment goes on with the same command -----------------------------

def killed_run_copy(model_dir, tmp_path):
    """The folder a new run leaves when killed while writing its first best checkpoint: its own
    files and only checkpoints/best/ckpt-1_temp."""
    folder = tmp_path / "killed"
    folder.mkdir()
    for name in os.listdir(model_dir):
        if os.path.isfile(os.path.join(model_dir, name)) and name not in (model_folder.HISTORY, model_folder.INTEGRITY):
            shutil.copyfile(os.path.join(model_dir, name), folder / name)
    temp = folder / model_folder.BEST_CHECKPOINTS / "ckpt-1_temp"
    temp.mkdir(parents=True)
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"half")
    (folder / "logs").mkdir()
    return folder


@pytest.mark.parametrize("resume", [False, True])
def test_a_run_killed_before_its_first_epoch_starts_again(resume, corpus_dir, emb_dir, model_dir, tmp_path):
    folder = killed_run_copy(model_dir, tmp_path)
    done = train(corpus_dir, emb_dir, folder, *(["--resume"] if resume else []), epochs=1)
    assert done.returncode == 0, done.stderr.decode()
    assert history_epochs(folder) == [1]
    assert not (folder / model_folder.BEST_CHECKPOINTS / "ckpt-1_temp").exists()


def test_files_a_user_keeps_in_a_model_folder_block_no_run_and_stay(corpus_dir, emb_dir, model_dir, tmp_path):
    """make demo writes pred.txt into runs/demo, and users keep notes beside their models: train.py
    removes only files it writes, so in a folder it marked they neither block --resume nor a run
    that starts afresh, and they stay as they were."""
    folder = tmp_path / "workspace"
    shutil.copytree(model_dir, folder)
    (folder / "pred.txt").write_text("tagged\n")
    (folder / "notes").mkdir()
    (folder / "notes" / "todo.txt").write_text("compare seeds\n")
    done = train(corpus_dir, emb_dir, folder, "--resume", epochs=len(history_epochs(folder)) + 1)
    assert done.returncode == 0, done.stderr.decode()
    killed = killed_run_copy(model_dir, tmp_path)
    (killed / "pred.txt").write_text("tagged\n")
    done = train(corpus_dir, emb_dir, killed, epochs=1)
    assert done.returncode == 0, done.stderr.decode()
    for kept in (folder / "pred.txt", killed / "pred.txt"):
        assert kept.read_text() == "tagged\n"
    assert (folder / "notes" / "todo.txt").read_text() == "compare seeds\n"


def test_a_model_whose_last_checkpoint_was_removed_is_never_started_afresh(corpus_dir, emb_dir, model_dir, tmp_path):
    folder = tmp_path / "shipped"
    shutil.copytree(model_dir, folder)
    shutil.rmtree(folder / model_folder.LAST_CHECKPOINTS)
    before = folder_state(folder)
    assert_user_error(train(corpus_dir, emb_dir, folder), "already holds a model; use --resume")
    assert_user_error(train(corpus_dir, emb_dir, folder, "--resume"), "nothing to resume",
                      "train again into another --model_dir")
    assert folder_state(folder) == before


def test_kill_9_before_the_first_epoch_then_the_same_command(corpus_dir, emb_dir, tmp_path):
    folder = tmp_path / "run"
    command = train_command(corpus_dir, emb_dir, folder, epochs=2)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (folder / model_folder.CONFIG).exists() and process.poll() is None:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed before it finished (its first epoch takes seconds)
    done = subprocess.run(command, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()
    assert history_epochs(folder) == [1, 2]


# --- case 14: a run that fails before its first epoch leaves nothing ------------------------------

def test_an_out_of_range_size_is_one_line_and_leaves_no_folder(corpus_dir, emb_dir, tmp_path):
    folder = tmp_path / "m"
    assert_user_error(train(corpus_dir, emb_dir, folder, "--set", "lstm_units=100000000000"),
                      "lstm_units=100000000000", "up to 65536")
    assert not folder.exists()


def test_a_new_run_that_fails_removes_what_it_wrote(corpus_dir, emb_dir, tmp_path):
    bad = ["--set", "emb_class=bert", "--set", f"bert_path={tmp_path / 'none'}"]  # found only when the model is built
    assert_user_error(train(corpus_dir, emb_dir, tmp_path / "m", *bad), "bert_path")
    assert not (tmp_path / "m").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(train(corpus_dir, emb_dir, empty, *bad), "bert_path")
    assert os.listdir(empty) == []


# --- case 15: --resume on a damaged folder --------------------------------------------------------

def damage_checkpoint(folder, suffix, content):
    last = folder / model_folder.LAST_CHECKPOINTS
    (path,) = [last / name for name in os.listdir(last) if name.endswith(suffix) or suffix in name]
    path.write_bytes(content(path.read_bytes()))
    return str(path)


def damage_history(folder, line):
    path = folder / model_folder.HISTORY
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + [line] + lines[2:]) + "\n")
    return f"{path}:2: "


def damage_config(folder):
    path = folder / model_folder.CONFIG
    config = json.loads(path.read_text())
    path.write_text(json.dumps(dict(config, lstm_units=config["lstm_units"] * 2)))
    return f"{path}: lstm_units={json.loads(path.read_text())['lstm_units']} but the checkpoint was trained with"


def damage_listing(folder):
    last = folder / model_folder.LAST_CHECKPOINTS
    for name in os.listdir(last):
        if name.startswith("ckpt-"):
            os.remove(last / name)
    return f"{last / 'checkpoint'}: names ckpt-"


@pytest.mark.parametrize("damage, expected", [
    (lambda folder: damage_checkpoint(folder, ".data-", lambda data: data[: len(data) // 2]), "remove"),
    (lambda folder: damage_checkpoint(folder, ".index", lambda data: os.urandom(len(data))), "remove"),
    (lambda folder: damage_history(folder, '{"loss":1}'), 'no "epoch" number'),
    (lambda folder: damage_history(folder, '{"epoch": 2, "loss"'), "invalid JSON"),
    (damage_config, "must be as in training"),
    (damage_listing, "remove"),
], ids=["truncated-data", "random-index", "history-without-epoch", "history-broken-json", "edited-config",
        "listing-of-missing-files"])
def test_resume_on_a_damaged_folder_is_one_line(damage, expected, corpus_dir, emb_dir, model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    named = damage(folder)
    before = folder_state(folder)
    assert_user_error(train(corpus_dir, emb_dir, folder, "--resume", epochs=4), named.split(".data-")[0].split(".index")[0],
                      expected)
    assert folder_state(folder) == before


# --- outputs of inference.py and beam_tag.py: never a file a command wrote -------------------------

def test_inference_and_beam_never_write_over_a_file_a_command_wrote(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    source = tmp_path / "in.txt"
    source.write_text("Anna O\n\n")
    before = folder_state(folder)
    for target in (folder / model_folder.WORDS, folder / model_folder.MARKER,
                   folder / model_folder.BEST_CHECKPOINTS / "checkpoint"):
        assert_user_error(run("inference.py", "--model_dir", folder, "--input", source, "--output", target),
                          f"{target}: --output is a file train.py wrote into", "give another file")
    shard = tmp_path / "shards" / model_folder.WORDS
    shard.parent.mkdir()
    shard.write_text("Anna O\n\n")
    assert_user_error(run("beam_tag.py", "--model_dir", folder, "--input", shard, "--output", folder),
                      f"{folder / model_folder.WORDS}: --output is a file train.py wrote into")
    assert folder_state(folder) == before
    # Beside the model's files, a prediction is welcome.
    done = run("inference.py", "--model_dir", folder, "--input", source, "--output", folder / "pred.txt")
    assert done.returncode == 0, done.stderr.decode()
