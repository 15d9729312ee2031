"""conlleval's per-entity-type figures on dev after each epoch: compact in train.py's log line,
whole in history.jsonl, per type in TensorBoard; and they are what etc/conlleval.py prints for
inference.py's output."""
import glob
import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from conftest import ROOT, TINY_CONFIG
from ner.training.checkpoints import read_history

EPOCHS = 6  # enough for the tiny model to find entities of most types
FIGURES = ("precision", "recall", "f1")
# conlleval.pl's line for one type: "%17s: precision: %6.2f%%; recall: %6.2f%%; FB1: %6.2f  %d"
CONLLEVAL_TYPE = re.compile(r"^ *(\S+): precision: *([\d.]+)%; recall: *([\d.]+)%; FB1: *([\d.]+) +(\d+)$", re.MULTILINE)
LOG_LINE = re.compile(r"^epoch (\d+): loss \d+\.\d{3}, \d+\.\d s, dev token F1 \d+\.\d\d, chunk F1 \d+\.\d\d "
                      r"\(((?:[A-Z]+ \d+\.\d ?)+)\)( \*)?$", re.MULTILINE)


@pytest.fixture(scope="module")
def trained(corpus_dir, emb_dir, tmp_path_factory):
    """A model folder trained by train.py, with its stderr (a pipe)."""
    model_dir = str(tmp_path_factory.mktemp("dev_figures") / "run")
    done = subprocess.run([sys.executable, "train.py", "--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir",
                           model_dir, "--epochs", str(EPOCHS), "--seed", "5"] + TINY_CONFIG,
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return model_dir, done.stderr.decode()


def test_history_holds_conllevals_figures_for_inference_output(trained, corpus_dir, tmp_path):
    model_dir, _ = trained
    history = read_history(os.path.join(model_dir, "history.jsonl"))
    assert [record["epoch"] for record in history] == list(range(1, EPOCHS + 1))
    best = [record for record in history if record["best"]][-1]  # the epoch checkpoints/best holds
    assert sum(figures["correct"] for figures in best["dev_by_type"].values()) > 0
    pred = str(tmp_path / "pred.txt")
    subprocess.run([sys.executable, "inference.py", "--model_dir", model_dir, "--input",
                    os.path.join(corpus_dir, "dev.txt"), "--output", pred], check=True, capture_output=True, cwd=ROOT)
    with open(pred, "rb") as f:
        scored = subprocess.run([sys.executable, os.path.join("etc", "conlleval.py")], stdin=f, check=True,
                                capture_output=True, cwd=ROOT).stdout.decode()
    printed = {name: figures for name, *figures in CONLLEVAL_TYPE.findall(scored)}
    assert printed and set(best["dev_by_type"]) == set(printed)
    for entity_type, figures in best["dev_by_type"].items():
        precision, recall, f1, found = printed[entity_type]
        assert [f"{figures[name]:.2f}" for name in FIGURES] == [precision, recall, f1], entity_type
        assert figures["predicted"] == int(found)
        assert figures["correct"] == round(figures["precision"] * figures["predicted"] / 100)
    phrases, found, correct = map(int, re.search(r"with (\d+) phrases; found: (\d+) phrases; correct: (\d+)\.",
                                                 scored).groups())
    assert sum(figures["gold"] for figures in best["dev_by_type"].values()) == phrases
    assert sum(figures["predicted"] for figures in best["dev_by_type"].values()) == found
    assert sum(figures["correct"] for figures in best["dev_by_type"].values()) == correct
    assert list(best["dev_by_type"]) == sorted(best["dev_by_type"])  # a stable order: by name


def test_log_line_shows_each_types_f1_in_one_line_per_epoch(trained):
    model_dir, stderr = trained
    history = read_history(os.path.join(model_dir, "history.jsonl"))
    lines = LOG_LINE.findall(stderr)
    assert [int(epoch) for epoch, _, _ in lines] == [record["epoch"] for record in history], stderr
    for (_, per_type, star), record in zip(lines, history):
        assert per_type.split() == [part for entity_type, figures in record["dev_by_type"].items()
                                    for part in (entity_type, f"{figures['f1']:.1f}")]
        assert (star == " *") == record["best"]


def test_tensorboard_has_each_types_figures_per_epoch(trained):
    model_dir, _ = trained
    scalars = {}
    for path in glob.glob(os.path.join(model_dir, "logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                scalars[value.tag, event.step] = float(tf.make_ndarray(value.tensor))
    for record in read_history(os.path.join(model_dir, "history.jsonl")):
        assert record["dev_by_type"]
        for entity_type, figures in record["dev_by_type"].items():
            for name in FIGURES:
                assert scalars[f"dev/{entity_type}/{name}", record["epoch"]] == pytest.approx(figures[name], abs=0.006)


def test_no_progress_bar_when_stderr_is_a_pipe(trained):
    _, stderr = trained
    assert "\r" not in stderr and "sentences/s" not in stderr and "it/s" not in stderr


def test_history_lines_from_before_the_per_type_figures_still_read(tmp_path):
    path = tmp_path / "history.jsonl"
    old = {"epoch": 1, "loss": 2.5, "train_seconds": 3.0, "dev_token_f1": 40.0, "dev_chunk_f1": 35.0, "best": True}
    new = dict(old, epoch=2, dev_by_type={"PER": {"precision": 50.0, "recall": 25.0, "f1": 33.33, "gold": 8,
                                                  "predicted": 4, "correct": 2}})
    path.write_text(json.dumps(old) + "\n" + json.dumps(new) + "\n")
    assert read_history(str(path)) == [old, new]
    path.write_text(json.dumps(old) + "\n" + json.dumps(new)[:-20] + "\n")  # the new line cut short
    with pytest.raises(ValueError, match=r"history.jsonl:2: invalid JSON"):
        read_history(str(path))
