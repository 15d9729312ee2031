"""The training loop: graph-mode steps, dev metrics each epoch, early stopping, checkpoints,
TensorBoard summaries and resuming."""
from __future__ import annotations

import json
import os
import random
import sys
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import input as conll
import metrics
from config import Config
from embvec import copy_vocabulary, load_vocabulary
from model import FEATURES, LENGTHS, TAGS, WORDS, Tagger
from optimizer import Adam
from tagging import BEST_CHECKPOINTS, tag_sentences

LAST_CHECKPOINTS = os.path.join("checkpoints", "last")


def set_seed(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Trainer:
    def __init__(self, config: Config, emb_dir: str, model_dir: str, resume: bool = False):
        self.config = config
        self.model_dir = model_dir
        set_seed(config.seed)
        if resume:
            vocab = load_vocabulary(model_dir)
        else:
            vocab = load_vocabulary(emb_dir)
            os.makedirs(model_dir, exist_ok=True)
            copy_vocabulary(vocab, model_dir)
            config.save(os.path.join(model_dir, "config.json"))
        self.model = Tagger(config, vocab)
        self.model.cache_contextual_features()  # frozen BERT/ELMo: computed once per sentence (issue 5)
        self.variables = self.model.trainable_variables
        self.optimizer = Adam(config, self.variables)
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
        self.best_score = tf.Variable(-1.0, trainable=False, name="best_score")
        self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
        state = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, epoch=self.epoch,
                                    best_score=self.best_score, bad_epochs=self.bad_epochs)
        self.last = tf.train.CheckpointManager(state, os.path.join(model_dir, LAST_CHECKPOINTS), max_to_keep=1)
        self.best = tf.train.CheckpointManager(tf.train.Checkpoint(model=self.model),
                                               os.path.join(model_dir, BEST_CHECKPOINTS), max_to_keep=1)
        if resume:
            if self.last.latest_checkpoint is None:
                raise SystemExit(f"{model_dir}: nothing to resume (no checkpoints/last)")
            state.restore(self.last.latest_checkpoint)
            print(f"resuming after epoch {int(self.epoch)} (best {config.early_stop_metric} "
                  f"{float(self.best_score):.2f})", file=sys.stderr)
        self.writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs"))
        self.train_step = tf.function(self._train_step, input_signature=[WORDS, LENGTHS, FEATURES, TAGS])

    def _train_step(self, words, lengths, features, tags):
        with tf.GradientTape() as tape:
            loss = self.model.loss(words, lengths, features, tags, training=True)
        gradients = tape.gradient(loss, self.variables)
        learning_rate = self.optimizer.apply(gradients, self.variables)
        return loss, learning_rate

    def evaluate(self, sentences: list[conll.Sentence], scheme: str) -> dict:
        predicted = [tags for tags, _ in tag_sentences(self.model, sentences, scheme, self.config.eval_batch_size)]
        gold = [list(s.tags) for s in sentences]
        return {"token_f1": metrics.token_f1(gold, predicted), "chunk_f1": metrics.chunk_f1(gold, predicted)}

    def fit(self, train: list[conll.Sentence], dev: list[conll.Sentence], dev_scheme: str):
        config = self.config
        train_scheme = conll.detect_scheme(s.tags for s in train)
        history_path = os.path.join(self.model_dir, "history.jsonl")
        for epoch in range(int(self.epoch), config.epochs):
            # Each epoch's order depends only on (seed, epoch), so --resume replays the same order.
            dataset = conll.make_dataset(train, config.feature_columns, config.batch_size,
                                         tag_scheme=(train_scheme, config.tag_scheme),
                                         shuffle_seed=config.seed * 100003 + epoch)
            started = time.perf_counter()
            total_loss, steps = 0.0, 0
            with tqdm(total=len(train), desc=f"epoch {epoch + 1}/{config.epochs}", unit=" sentences",
                      disable=None, mininterval=1.0) as bar:
                for batch in dataset:
                    loss, learning_rate = self.train_step(batch["words"], batch["lengths"], batch["features"],
                                                          batch["tags"])
                    total_loss += float(loss)
                    steps += 1
                    bar.update(int(tf.shape(batch["lengths"])[0]))
                    bar.set_postfix(loss=f"{total_loss / steps:.3f}", refresh=False)
                    if steps % 50 == 0:
                        with self.writer.as_default(step=int(self.optimizer.step)):
                            tf.summary.scalar("loss", loss)
                            tf.summary.scalar("learning_rate", learning_rate)
            train_seconds = time.perf_counter() - started
            scores = self.evaluate(dev, dev_scheme)
            score = scores[config.early_stop_metric]
            improved = score > float(self.best_score)
            if improved:
                self.best_score.assign(score)
                self.bad_epochs.assign(0)
                self.best.save(checkpoint_number=epoch + 1)
            else:
                self.bad_epochs.assign_add(1)
            self.epoch.assign(epoch + 1)
            self.last.save(checkpoint_number=epoch + 1)
            with self.writer.as_default(step=epoch + 1):
                tf.summary.scalar("dev/token_f1", scores["token_f1"])
                tf.summary.scalar("dev/chunk_f1", scores["chunk_f1"])
            record = {"epoch": epoch + 1, "loss": total_loss / max(steps, 1), "train_seconds": round(train_seconds, 2),
                      "dev_token_f1": round(scores["token_f1"], 3), "dev_chunk_f1": round(scores["chunk_f1"], 3),
                      "best": improved}
            with open(history_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            print(f"epoch {epoch + 1}: loss {record['loss']:.3f}, {train_seconds:.1f} s, dev token F1 "
                  f"{scores['token_f1']:.2f}, chunk F1 {scores['chunk_f1']:.2f}{' *' if improved else ''}",
                  file=sys.stderr)
            if int(self.bad_epochs) >= config.patience:
                print(f"early stop: no better dev {config.early_stop_metric} for {config.patience} epochs",
                      file=sys.stderr)
                break
        print(f"best dev {config.early_stop_metric}: {float(self.best_score):.2f} -> "
              f"{os.path.join(self.model_dir, BEST_CHECKPOINTS)}", file=sys.stderr)
