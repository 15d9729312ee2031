"""The two checkpoints of a model folder: best (the model to use: the model's weights only) and
last (everything needed to --resume: model, optimizer, weight average, epoch and early-stopping
state), and history.jsonl, one line per finished epoch, kept in step with last."""
from __future__ import annotations

import json
import os

import tensorflow as tf

from ner import model_folder


class Checkpoints:
    def __init__(self, model_dir: str, model: tf.Module, state: tf.train.Checkpoint):
        self.model_dir = model_dir
        self.state = state
        # Every worker reads checkpoints/last to resume; only the chief saves.
        self.last = tf.train.CheckpointManager(state, os.path.join(model_dir, model_folder.LAST_CHECKPOINTS),
                                               max_to_keep=1)
        self.best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                               os.path.join(model_dir, model_folder.BEST_CHECKPOINTS), max_to_keep=1)
        self.history_path = os.path.join(model_dir, model_folder.HISTORY)

    def restore_last(self) -> None:
        if self.last.latest_checkpoint is None:
            raise FileNotFoundError(f"{self.model_dir}: nothing to resume (no {model_folder.LAST_CHECKPOINTS})")
        self.state.restore(self.last.latest_checkpoint)

    def save_best(self, epoch: int) -> None:
        self.best.save(checkpoint_number=epoch)

    def save_epoch(self, record: dict) -> None:
        """The history line first: a kill before the checkpoint is saved makes --resume run this
        epoch again, and resuming drops the line (forget_history_after)."""
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        self.last.save(checkpoint_number=record["epoch"])

    def forget_history_after(self, epoch: int) -> None:
        """A kill between appending an epoch's history line and saving its checkpoint leaves a line
        for an epoch that resuming will run again: such lines go."""
        if not os.path.exists(self.history_path):
            return
        with open(self.history_path, encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
        kept = [line for line in lines if json.loads(line)["epoch"] <= epoch]
        if len(kept) < len(lines):
            model_folder.write_text(self.history_path, "".join(kept))
