"""The two checkpoints of a model folder: best (the model to use: the model's weights only, and the
config it was trained with) and last (everything needed to --resume: model, optimizer, weight
average, epoch and early-stopping state), and history.jsonl, one line per finished epoch, kept in
step with last. restore_best loads best into a model built from the folder's config.json, and
refuses when that config no longer describes the checkpoint."""
from __future__ import annotations

import dataclasses
import gc
import json
import os
import tempfile

import tensorflow as tf

from ner import integrity, model_folder
from ner.config import TRAINING_KEYS


class Checkpoints:
    def __init__(self, model_dir: str, model: tf.Module, state: tf.train.Checkpoint):
        self.model_dir = model_dir
        self.model = model
        self.state = state
        # Every worker reads checkpoints/last to resume; only the chief saves.
        self.last = tf.train.CheckpointManager(state, os.path.join(model_dir, model_folder.LAST_CHECKPOINTS),
                                               max_to_keep=1)
        self.best = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                               os.path.join(model_dir, model_folder.BEST_CHECKPOINTS), max_to_keep=1)
        self.history_path = os.path.join(model_dir, model_folder.HISTORY)

    def restore_last(self) -> None:
        """Restores checkpoints/last, the last finished epoch (finished_epoch), after checking that
        the config still describes it and that every value in it reads; any failure is one line
        naming the file and what to do."""
        latest = finished_checkpoint(self.model_dir)
        if latest is None:
            raise FileNotFoundError(f"{self.model_dir}: nothing to resume (no {model_folder.LAST_CHECKPOINTS})")
        _check_trained_config(self.model.config, self.model_dir)
        advice = (f"--resume cannot continue from it: train again into another --model_dir, or remove "
                  f"{os.path.join(self.model_dir, model_folder.LAST_CHECKPOINTS)} to start this run afresh")
        try:
            with model_folder.reading(latest, "checkpoint"):
                reader = tf.train.load_checkpoint(latest)
                for name in reader.get_variable_to_shape_map():  # a truncated file fails here, not mid-training
                    reader.get_tensor(name)
                self.state.restore(latest).assert_existing_objects_matched()
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(f"{e}; {advice}") from None

    def save_best(self, epoch: int) -> None:
        self.best.save(checkpoint_number=epoch)
        self.model.config.save(os.path.join(self.model_dir, model_folder.TRAINED_CONFIG))
        integrity.seal_model_folder(self.model_dir, self.best.latest_checkpoint)

    def save_epoch(self, record: dict) -> None:
        """The history line first (the file rewritten whole, never half a line): a kill before the
        checkpoint is saved makes --resume run this epoch again, and resuming drops the line
        (forget_history_after)."""
        lines = [json.dumps(entry) + "\n" for entry in read_history(self.history_path)]
        model_folder.write_text(self.history_path, "".join(lines) + json.dumps(record) + "\n")
        self.last.save(checkpoint_number=record["epoch"])

    def forget_history_after(self, epoch: int) -> None:
        """A kill between writing an epoch's history line and saving its checkpoint leaves a line
        for an epoch that resuming will run again: such lines go."""
        if not os.path.exists(self.history_path):
            return
        history = read_history(self.history_path)
        kept = [entry for entry in history if entry["epoch"] <= epoch]
        if len(kept) < len(history):
            model_folder.write_text(self.history_path, "".join(json.dumps(entry) + "\n" for entry in kept))


def read_history(path: str) -> list[dict]:
    """history.jsonl's records; a line that is not one names the file and the line."""
    if not os.path.exists(path):
        return []
    records = []
    with model_folder.reading(path, "history"):
        with open(path, encoding="utf-8") as f:
            lines = f.read().split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            problem = None if isinstance(record, dict) else "not a JSON object"
        except json.JSONDecodeError as e:
            problem = f"invalid JSON ({e.msg})"
        if problem is None and (not isinstance(record.get("epoch"), int) or isinstance(record["epoch"], bool)
                                or record["epoch"] < 1):
            problem = 'no "epoch" number'
        if problem:
            raise ValueError(f"{path}:{number}: {problem}; each line records one finished epoch: restore the line "
                             "or remove it (resuming rewrites the lines after the last checkpoint)")
        records.append(record)
    return records


def holds_a_model(model_dir: str) -> bool:
    """Whether any epoch of a run in model_dir finished: checkpoints/last has its checkpoint,
    history.jsonl records one, or checkpoints/best is past epoch 1 (a folder whose last checkpoint
    was removed by hand still holds a model). A run killed before its first epoch finished leaves
    none of these, and may start again in its place."""
    if finished_checkpoint(model_dir) is not None:
        return True
    if read_history(os.path.join(model_dir, model_folder.HISTORY)):
        return True
    best = os.path.join(model_dir, model_folder.BEST_CHECKPOINTS)
    with model_folder.reading(os.path.join(best, "checkpoint"), "checkpoint list"):
        state = tf.train.get_checkpoint_state(best) if os.path.exists(os.path.join(best, "checkpoint")) else None
    return state is not None and state.model_checkpoint_path.rsplit("-", 1)[-1] not in ("", "1")


def finished_checkpoint(model_dir: str) -> str | None:
    """The checkpoint of the last finished epoch (checkpoints/last), or None when no epoch finished.
    A kill leaves at most a checkpoint being written (ckpt-N_temp, or files the listing does not
    name yet): the listing is written only once its checkpoint is complete, and names the last
    finished epoch. A listing that names missing files is damage, and is named."""
    folder = os.path.join(model_dir, model_folder.LAST_CHECKPOINTS)
    listing = os.path.join(folder, "checkpoint")
    if not os.path.exists(listing):
        return None
    afresh = f"train again into another --model_dir, or remove {folder} to start this run afresh"
    try:
        with model_folder.reading(listing, "checkpoint list"):
            state = tf.train.get_checkpoint_state(folder)
    except ValueError as e:
        raise ValueError(f"{e}; {afresh}") from None
    if state is None or not state.model_checkpoint_path:
        raise ValueError(f"{listing}: names no checkpoint; {afresh}")
    latest = os.path.join(folder, os.path.basename(state.model_checkpoint_path))
    if not os.path.exists(latest + ".index"):
        raise FileNotFoundError(f"{listing}: names {os.path.basename(latest)}, whose {os.path.basename(latest)}.index "
                                f"is missing; {afresh}")
    return latest


def restore_best(model: tf.Module, model_dir: str) -> None:
    """Loads checkpoints/best into `model`, built from model_dir's config.json. A config that no
    longer matches the checkpoint (a key edited since training) is an error naming the key, where
    the checkpoint kept its config; otherwise naming the variable that does not fit."""
    folder = os.path.join(model_dir, model_folder.BEST_CHECKPOINTS)
    listing = os.path.join(folder, "checkpoint")
    if not os.path.exists(listing):
        raise FileNotFoundError(f"{listing}: missing, so no best checkpoint (has training finished an epoch?)")
    with model_folder.reading(listing, "checkpoint list"):
        latest = tf.train.latest_checkpoint(folder)
    if latest is None:
        raise FileNotFoundError(f"{listing}: names no checkpoint whose .index file exists")
    _check_trained_config(model.config, model_dir)
    mismatch = None
    # A failed restore logs every value it left out when it is released: the error below says it once.
    logger, level = tf.get_logger(), tf.get_logger().level
    logger.setLevel("ERROR")
    try:
        with model_folder.reading(latest, "checkpoint"):
            saved = {name for name, _ in tf.train.list_variables(latest)}
            status = None
            try:
                status = tf.train.Checkpoint(model=model).restore(latest)
                status.assert_consumed()
            except ValueError as e:  # a variable of another shape: "... incompatible tensor with shape ..."
                if "shape" not in str(e):
                    raise
                mismatch = str(e).splitlines()[0]
            except AssertionError:
                status.expect_partial()  # the values left out are listed below, not logged when the model goes
                built = _variable_names(model)
                differences = sorted(saved - built - {"_CHECKPOINTABLE_OBJECT_GRAPH"}) + sorted(built - saved)
                mismatch = f"{', '.join(differences[:3])} in one but not the other"
        gc.collect()
    finally:
        logger.setLevel(level)
    if mismatch:
        raise ValueError(f"{latest}: does not match the model {os.path.join(model_dir, model_folder.CONFIG)} "
                         f"describes: {mismatch}; was a key changed since training?")


def _variable_names(model: tf.Module) -> set[str]:
    """The names tf.train.list_variables gives for a checkpoint of `model`, read off one written."""
    with tempfile.TemporaryDirectory() as folder:
        path = tf.train.Checkpoint(model=model).write(os.path.join(folder, "model"))
        return {name for name, _ in tf.train.list_variables(path)}


def _check_trained_config(config, model_dir: str) -> None:
    trained_path = os.path.join(model_dir, model_folder.TRAINED_CONFIG)
    if not os.path.exists(trained_path):  # a model folder from before the checkpoint kept its config
        return
    trained = type(config).load(trained_path)
    changed = [key for key, value in dataclasses.asdict(config).items()
               if key not in TRAINING_KEYS and getattr(trained, key) != value]
    if changed:
        key = changed[0]
        raise ValueError(f"{os.path.join(model_dir, model_folder.CONFIG)}: {key}={json.dumps(getattr(config, key))} "
                         f"but the checkpoint was trained with {key}={json.dumps(getattr(trained, key))} "
                         f"({trained_path}); {', '.join(changed)} must be as in training")
