"""The training loop: graph-mode steps, dev metrics each epoch, early stopping, checkpoints,
TensorBoard summaries and resuming, on one device or under a tf.distribute strategy
(ner/training/distribute.py), where only the chief writes files."""
from __future__ import annotations

import contextlib
import os
import random
import sys
import time

import numpy as np
import tensorflow as tf

from ner import model_folder
from ner.config import Config
from ner.data.batching import make_dataset
from ner.data.conll import Sentence
from ner.data.documents import document_contexts
from ner.data.schemes import detect_scheme
from ner.data.vocabulary import Vocabulary
from ner.model.tagger import FEATURES, LEFT_CONTEXT, LENGTHS, RIGHT_CONTEXT, TAGS, WORDS, Tagger
from ner.model.tagging import tag_sentences
from ner.progress import progress_bar
from ner.training import distribute, metrics
from ner.training.checkpoints import Checkpoints
from ner.training.optimizer import Adam
from ner.training.weight_average import WeightAverage
from ner.wording import counted

# conlleval's figures per entity type, in percent: in history.jsonl (two decimals, as conlleval
# prints them, beside its chunk counts) and in TensorBoard as dev/<type>/<figure>.
TYPE_FIGURES = ("precision", "recall", "f1")


def set_seed(seed: int):
    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    tf.config.experimental.enable_op_determinism()


class Trainer:
    def __init__(self, config: Config, vocab: Vocabulary, model_dir: str, resume: bool = False, strategy=None):
        """The model folder exists and holds the config and vocabularies (ner.training.run). strategy:
        a tf.distribute strategy from distribute.make_strategy, made before any TensorFlow op ran;
        None trains on one device with the plain step."""
        self.config = config
        self.model_dir = model_dir
        self.strategy = strategy
        self.chief = distribute.is_chief(strategy)
        set_seed(config.seed)
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            self.model = Tagger(config, vocab)
            self.model.cache_contextual_features()  # frozen BERT/ELMo: computed once per sentence
            self.variables = self.model.trainable_variables
            self.optimizer = Adam(config, self.variables)
            self.average = (WeightAverage(self.variables, config.weight_averaging) if config.weight_averaging > 0
                            else None)
            self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
            self.best_score = tf.Variable(-1.0, trainable=False, name="best_score")
            self.bad_epochs = tf.Variable(0, dtype=tf.int64, trainable=False, name="bad_epochs")
        state = tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, epoch=self.epoch,
                                    best_score=self.best_score, bad_epochs=self.bad_epochs)
        if self.average is not None:
            state.average = self.average
        self.checkpoints = Checkpoints(model_dir, self.model, state)
        if resume:
            self._resume()
        self.writer = (tf.summary.create_file_writer(os.path.join(model_dir, model_folder.LOGS)) if self.chief
                       else tf.summary.create_noop_writer())
        step = self._train_step if strategy is None else self._distributed_step
        self.train_step = tf.function(step, input_signature=[WORDS, LENGTHS, FEATURES, TAGS, LEFT_CONTEXT,
                                                             RIGHT_CONTEXT], autograph=False)
        self.agree = distribute.first_replica_values(strategy) if strategy is not None else None

    def _resume(self):
        self.checkpoints.restore_last()
        finished = int(self.epoch.numpy())
        if self.config.epochs < finished:
            raise ValueError(f"{self.model_dir}: {finished} epochs are already trained; --epochs {self.config.epochs} "
                             "cannot take them back")
        if self.chief:
            self.checkpoints.forget_history_after(finished)
            self.config.save(os.path.join(self.model_dir, model_folder.CONFIG))  # --epochs may have given a new cap
        self.log(f"resuming after epoch {finished} (best {self.config.early_stop_metric} "
                 f"{float(self.best_score.numpy()):.2f})")

    def log(self, message: str):
        if self.chief:
            print(message, file=sys.stderr)

    def step(self, batch: dict):
        """One training step on a batch of make_dataset -> (loss, learning rate)."""
        return self.train_step(batch["words"], batch["lengths"], batch["features"], batch["tags"],
                               batch["left_context"], batch["right_context"])

    def _train_step(self, words, lengths, features, tags, left_context, right_context):
        with tf.GradientTape() as tape:
            loss = self.model.loss(words, lengths, features, tags, True, (left_context, right_context))
        gradients = tape.gradient(loss, self.variables)
        learning_rate = self.optimizer.apply(gradients, self.variables)
        if self.average is not None:
            self.average.update(self.optimizer.step)
        return loss, learning_rate

    def _distributed_step(self, words, lengths, features, tags, left_context, right_context):
        """The global batch in, the mean loss over it and the learning rate out (see ner/training/distribute.py)."""
        batch = {"words": words, "lengths": lengths, "features": features, "tags": tags,
                 "left_context": left_context, "right_context": right_context}
        loss, learning_rate = self.strategy.run(self._replica_step, args=(batch,))
        first = self.strategy.experimental_local_results
        return first(loss)[0], first(learning_rate)[0]

    def _replica_step(self, batch):
        context = tf.distribute.get_replica_context()
        share, count = distribute.replica_share(batch)
        # The share's mean loss times its part of the global batch: summed over the replicas, the
        # global batch's mean loss (an empty share stands in with one sentence and weight 0).
        weight = tf.cast(count, tf.float32) / tf.cast(tf.shape(batch["lengths"])[0], tf.float32)
        with tf.GradientTape() as tape:
            loss = self.model.loss(share["words"], share["lengths"], share["features"], share["tags"], True,
                                   (share["left_context"], share["right_context"])) * weight
        gradients = tape.gradient(loss, self.variables)
        gradients = context.all_reduce(tf.distribute.ReduceOp.SUM, gradients)
        learning_rate = self.optimizer.apply(gradients, self.variables)
        if self.average is not None:
            self.average.update(self.optimizer.step)
        return context.all_reduce(tf.distribute.ReduceOp.SUM, loss), learning_rate

    def evaluate(self, sentences: list[Sentence], scheme: str, label: str = "dev") -> tuple[dict, dict]:
        """The overall scores (token_f1, chunk_f1) and conlleval's figures per entity type
        (metrics.chunk_scores); the chief shows a bar named `label` while the sentences are tagged."""
        predicted = [tags for tags, _ in tag_sentences(self.model, sentences, scheme, self.config.eval_batch_size,
                                                       progress=self.chief, progress_label=label)]
        gold = [list(s.tags) for s in sentences]
        chunk_f1, by_type = metrics.chunk_scores(gold, predicted)
        return {"token_f1": metrics.token_f1(gold, predicted), "chunk_f1": chunk_f1}, by_type

    def fit(self, train: list[Sentence], dev: list[Sentence], dev_scheme: str):
        config = self.config
        train_scheme = detect_scheme(s.tags for s in train)
        contexts = document_contexts(train, config.context_words) if config.context_words else None
        for epoch in range(int(self.epoch.numpy()), config.epochs):
            # Each epoch's order depends only on (seed, epoch), so --resume replays the same order.
            dataset = make_dataset(train, config.feature_columns, config.batch_size,
                                         tag_scheme=(train_scheme, config.tag_scheme),
                                         shuffle_seed=config.seed * 100003 + epoch, contexts=contexts)
            started = time.perf_counter()
            total_loss, steps = 0.0, 0
            with progress_bar(f"epoch {epoch + 1}/{config.epochs}", " sentences", total=len(train), show=self.chief,
                              mininterval=1.0) as bar:
                for batch in dataset:
                    loss, learning_rate = self.step(batch)
                    total_loss += float(loss)
                    steps += 1
                    bar.update(int(tf.shape(batch["lengths"])[0]))
                    bar.set_postfix(loss=f"{total_loss / steps:.3f}", refresh=False)
                    if steps % 50 == 0:
                        with self.writer.as_default(step=int(self.optimizer.step.numpy())):
                            tf.summary.scalar("loss", loss)
                            tf.summary.scalar("learning_rate", learning_rate)
            train_seconds = time.perf_counter() - started
            with self.average.swapped_in() if self.average is not None else contextlib.nullcontext():
                scores, by_type = self.evaluate(dev, dev_scheme, f"epoch {epoch + 1}/{config.epochs} dev")
                if self.strategy is not None:
                    # Every worker evaluated the same weights; all take the first replica's scores.
                    names = sorted(scores)
                    agreed = self.agree(tf.constant([scores[name] for name in names], tf.float64)).numpy()
                    scores = dict(zip(names, agreed.tolist()))
                score = scores[config.early_stop_metric]
                improved = score > float(self.best_score.numpy())
                if improved:
                    self.best_score.assign(score)
                    self.bad_epochs.assign(0)
                    if self.chief:
                        self.checkpoints.save_best(epoch + 1)
                else:
                    self.bad_epochs.assign_add(1)
            self.epoch.assign(epoch + 1)
            with self.writer.as_default(step=epoch + 1):
                tf.summary.scalar("dev/token_f1", scores["token_f1"])
                tf.summary.scalar("dev/chunk_f1", scores["chunk_f1"])
                for entity_type, figures in by_type.items():
                    for figure in TYPE_FIGURES:
                        tf.summary.scalar(f"dev/{entity_type}/{figure}", figures[figure])
            record = {"epoch": epoch + 1, "loss": total_loss / max(steps, 1), "train_seconds": round(train_seconds, 2),
                      "dev_token_f1": round(scores["token_f1"], 3), "dev_chunk_f1": round(scores["chunk_f1"], 3),
                      "dev_by_type": {entity_type: {key: round(value, 2) if key in TYPE_FIGURES else value
                                                    for key, value in figures.items()}
                                      for entity_type, figures in by_type.items()},
                      "best": improved}
            if self.chief:
                self.checkpoints.save_epoch(record)
            type_f1 = " ".join(f"{entity_type} {figures['f1']:.1f}" for entity_type, figures in by_type.items())
            self.log(f"epoch {epoch + 1}: loss {record['loss']:.3f}, {train_seconds:.1f} s, dev token F1 "
                     f"{scores['token_f1']:.2f}, chunk F1 {scores['chunk_f1']:.2f}{f' ({type_f1})' if type_f1 else ''}"
                     f"{' *' if improved else ''}")
            if int(self.bad_epochs.numpy()) >= config.patience:
                self.log(f"early stop: no better dev {config.early_stop_metric} for {counted(config.patience, 'epoch')}")
                break
        self.log(f"best dev {config.early_stop_metric}: {float(self.best_score.numpy()):.2f} -> "
                 f"{os.path.join(self.model_dir, model_folder.BEST_CHECKPOINTS)}")
