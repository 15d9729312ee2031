"""Training killed with SIGKILL (no handler runs, no file is closed) at an arbitrary moment after
an epoch: the best checkpoint still loads, and --resume continues from the last finished epoch."""
import json
import os
import re
import signal
import subprocess
import sys

import pytest
import tensorflow as tf

import train
from conftest import ROOT, TINY_CONFIG
from ner.serving.loaders import load_model

EPOCHS = 7


def history(model_dir):
    with open(os.path.join(model_dir, "history.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def train_until_killed(command, after_epoch: int) -> bytes:
    """Runs train.py and kills it with SIGKILL as soon as it reports epoch `after_epoch`: the next
    epoch, its dev evaluation or its checkpoint writing is then under way."""
    process = subprocess.Popen(command, stderr=subprocess.PIPE, cwd=ROOT)
    seen = b""
    for line in process.stderr:
        seen += line
        if line.startswith(f"epoch {after_epoch}:".encode()):
            process.send_signal(signal.SIGKILL)
            break
    process.stderr.close()
    assert process.wait() == -signal.SIGKILL, seen.decode(errors="replace")
    return seen


def best_epoch(model_dir) -> int:
    with open(os.path.join(model_dir, "checkpoints", "best", "checkpoint"), encoding="utf-8") as f:
        return int(re.search(r'model_checkpoint_path: "ckpt-(\d+)"', f.read()).group(1))


def test_kill_9_during_training_then_resume(corpus_dir, emb_dir, tmp_path):
    model_dir = str(tmp_path / "run")
    train = [sys.executable, "train.py", "--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", model_dir]
    first = train + ["--epochs", str(EPOCHS), "--seed", "3", "--set", "patience=100"] + TINY_CONFIG
    resume = train + ["--resume"]
    train_until_killed(first, after_epoch=2)
    for kill_after in (2, None):  # killed once more while resumed, then left to finish
        recorded = history(model_dir)
        # The best checkpoint survived the kill whole: it loads and tags, and it is the last epoch
        # recorded as best, or the epoch being saved when the kill came.
        model = load_model(model_dir)
        assert model.config.epochs == EPOCHS
        last_best = max(r["epoch"] for r in recorded if r["best"])
        assert best_epoch(model_dir) in (last_best, recorded[-1]["epoch"] + 1)
        if kill_after is None:
            done = subprocess.run(resume, capture_output=True, cwd=ROOT)
            assert done.returncode == 0, done.stderr.decode(errors="replace")
            output = done.stderr
        else:
            output = train_until_killed(resume, after_epoch=recorded[-1]["epoch"] + kill_after)
        started_after = int(re.search(rb"resuming after epoch (\d+)", output).group(1))
        # The last finished epoch: the history's last, or the one before when the kill fell between
        # appending the history line and saving the checkpoint (resuming then drops that line).
        assert started_after in (recorded[-1]["epoch"], recorded[-1]["epoch"] - 1)
        assert re.search(rf"^epoch {started_after + 1}:".encode(), output, re.MULTILINE)
    # One line per epoch, in order: nothing lost, nothing repeated across the kills.
    assert [r["epoch"] for r in history(model_dir)] == list(range(1, EPOCHS + 1))
    # The line of an epoch whose checkpoint was never saved (as after a kill between the two) goes
    # when resuming: here an epoch past the last checkpoint.
    with open(os.path.join(model_dir, "history.jsonl"), "a", encoding="utf-8") as f:
        f.write(json.dumps(dict(history(model_dir)[-1], epoch=EPOCHS + 1)) + "\n")
    done = subprocess.run(resume, capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert [r["epoch"] for r in history(model_dir)] == list(range(1, EPOCHS + 1))
    assert best_epoch(model_dir) == max(r["epoch"] for r in history(model_dir) if r["best"])
    load_model(model_dir)


def test_resume_continues_from_the_last_epoch(corpus_dir, emb_dir, tmp_path):
    folder = str(tmp_path / "m")
    common = ["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", folder]
    train.main(common + ["--epochs", "1"] + TINY_CONFIG)
    train.main(common + ["--resume", "--epochs", "3"])  # a new cap for the run
    history = [json.loads(line) for line in open(os.path.join(folder, "history.jsonl"))]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert tf.train.latest_checkpoint(os.path.join(folder, "checkpoints", "last")).endswith("-3")
    assert json.load(open(os.path.join(folder, "config.json")))["epochs"] == 3
    # The cap of the epochs already finished ends the run as it is (a run stopped after that epoch).
    train.main(common + ["--resume", "--epochs", "3"])
    assert len(open(os.path.join(folder, "history.jsonl")).readlines()) == 3
    with pytest.raises(SystemExit, match="3 epochs are already trained; --epochs 2"):
        train.main(common + ["--resume", "--epochs", "2"])
    assert json.load(open(os.path.join(folder, "config.json")))["epochs"] == 3
