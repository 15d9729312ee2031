"""train.py's one call: the config, the data, the model folder and the strategy, then the Trainer."""
from __future__ import annotations

import os

from ner import model_folder
from ner.config import Config
from ner.data.conll import read_split
from ner.data.schemes import detect_scheme
from ner.data.vocabulary import Vocabulary, copy_vocabulary, load_vocabulary


def make_config(model_dir: str, resume: bool, config_path: str | None = None, overrides: list[str] = (),
                seed: int | None = None, epochs: int | None = None) -> Config:
    """Defaults, then the JSON file, then the overrides and the seed; when resuming, the run's own
    config, of which only the epoch cap may change (to end a run early or extend it)."""
    if resume:
        config = Config.load(os.path.join(model_dir, model_folder.CONFIG))
    else:
        config = Config.load(config_path) if config_path else Config()
        config = config.with_overrides(list(overrides))
        if seed is not None:
            config = config.replace(seed=seed)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    return config


def start_model_folder(config: Config, vocab: Vocabulary, model_dir: str) -> None:
    """A new run's folder: its config and a copy of the vocabularies, so the model carries its own."""
    os.makedirs(model_dir, exist_ok=True)
    copy_vocabulary(vocab, model_dir)
    config.save(os.path.join(model_dir, model_folder.CONFIG))


def train(config: Config, data_dir: str, emb_dir: str, model_dir: str, resume: bool = False,
          strategy_name: str = "default", logical_cpus: int = 0, threads: int = 0):
    """Trains into model_dir (or goes on with it, resume) and returns the Trainer."""
    train_sentences, dev_sentences = read_split(data_dir, "train"), read_split(data_dir, "dev")
    dev_scheme = detect_scheme(s.tags for s in dev_sentences)
    if not resume and os.path.isdir(os.path.join(model_dir, model_folder.CHECKPOINTS)):
        raise ValueError(f"{model_dir}: already holds a model; use --resume to continue it or another --model_dir")
    # TensorFlow is imported only now, so argument errors stay fast; the strategy is made before any
    # TensorFlow op runs (multi-worker collectives and logical devices need that).
    from ner import tf_options
    from ner.training import distribute
    tf_options.limit_threads(threads)
    strategy = distribute.make_strategy(strategy_name, logical_cpus)
    trainer = make_trainer(config, emb_dir, model_dir, resume, strategy)
    trainer.fit(train_sentences, dev_sentences, dev_scheme)
    return trainer


def make_trainer(config: Config, emb_dir: str, model_dir: str, resume: bool = False, strategy=None):
    """A Trainer on a new model folder made from emb_dir's vocabularies, or on the folder to resume."""
    from ner.training import distribute
    from ner.training.trainer import Trainer
    vocab = load_vocabulary(model_dir if resume else emb_dir)
    if not resume and distribute.is_chief(strategy):
        start_model_folder(config, vocab, model_dir)
    return Trainer(config, vocab, model_dir, resume=resume, strategy=strategy)
