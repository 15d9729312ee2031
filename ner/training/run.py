"""train.py's one call: the config, the data, the model folder and the strategy, then the Trainer."""
from __future__ import annotations

import os
import re

from ner import model_folder, paths
from ner.config import Config
from ner.data.conll import Sentence, check_feature_columns, read_split
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


def check_paths(data_dir: str, emb_dir: str, model_dir: str, resume: bool) -> None:
    paths.input_folder(data_dir, "--data_dir")
    if resume:
        paths.input_folder(model_dir, "--model_dir")
        return
    paths.input_folder(emb_dir, "--emb_dir")
    paths.output_folder(model_dir, "--model_dir")
    if os.path.isdir(os.path.join(model_dir, model_folder.CHECKPOINTS)):
        raise ValueError(f"{model_dir}: already holds a model; use --resume to continue it or another --model_dir")
    if os.path.exists(model_dir) and os.path.samefile(model_dir, emb_dir):
        raise ValueError(f"{model_dir}: --model_dir is the --emb_dir; a model folder gets its own copy of the "
                         "vocabularies, so give another folder")
    written = {model_folder.CONFIG, model_folder.HISTORY, model_folder.LOGS, model_folder.WORDS, model_folder.CHARS,
               model_folder.ENTITY_TYPES, model_folder.EMBEDDINGS, model_folder.VOCABULARY_META}
    names = set(os.listdir(model_dir)) if os.path.isdir(model_dir) else set()
    others = {name for name in names - written if not re.fullmatch(r"column\d+\.txt", name)}
    # A run stopped before its first checkpoint left only its own files: starting again may replace them.
    unfinished_run = model_folder.CONFIG in names and not others
    if names & written and not unfinished_run:
        raise ValueError(f"{model_dir}: --model_dir already holds {', '.join(sorted(names & written))}, which "
                         "training would overwrite; give a new or empty folder")


def check_data_fits(config: Config, vocab: Vocabulary, data_dir: str, splits: dict[str, list[Sentence]]) -> None:
    """The data has the columns the config reads, and the vocabularies know those columns and every
    entity type of the data (an unknown type would silently train as O)."""
    missing_columns = [c for c in config.feature_columns if c not in vocab.columns]
    if missing_columns:
        raise ValueError(f"{vocab.folder}: has no vocabulary of column(s) {missing_columns} that config "
                         f"feature_columns={config.feature_columns} reads (it has {sorted(vocab.columns) or 'none'}); "
                         "build it with embvec.py from data with those columns")
    for split, sentences in splits.items():
        path = os.path.join(data_dir, f"{split}.txt")
        for sentence in sentences:
            check_feature_columns(sentence, config.feature_columns, path)
    train_path = os.path.join(data_dir, "train.txt")
    train_types = _entity_types(splits["train"])
    unknown = sorted(train_types - set(vocab.entity_types))
    if unknown:
        raise ValueError(f"{train_path}: entity type(s) {', '.join(unknown)} missing from "
                         f"{os.path.join(vocab.folder, model_folder.ENTITY_TYPES)} ({', '.join(vocab.entity_types)}); "
                         "build the vocabularies with embvec.py from this data")
    # embvec.py takes the entity types from train.txt alone: a type that only another split has
    # could never be learnt, and rebuilding the vocabularies would not add it.
    for split, sentences in splits.items():
        first = _first_tag_outside(sentences, train_types)
        if first:
            line, entity_type = first
            raise ValueError(f"{os.path.join(data_dir, split + '.txt')}:{line}: entity type {entity_type} does not "
                             f"occur in {train_path} ({', '.join(sorted(train_types)) or 'no types'}), so no model "
                             f"can learn it; correct the tag, or add {entity_type} sentences to train.txt and "
                             "rebuild the vocabularies with embvec.py")


def _entity_types(sentences: list[Sentence]) -> set[str]:
    return {tag[2:] for sentence in sentences for tag in sentence.tags if tag != "O"}


def _first_tag_outside(sentences: list[Sentence], types: set[str]) -> tuple[int, str] | None:
    """The line number and type of the first tag whose entity type is not in `types`."""
    for sentence in sentences:
        for offset, tag in enumerate(sentence.tags):
            if tag != "O" and tag[2:] not in types:
                return sentence.first_line + offset, tag[2:]
    return None


def train(config: Config, data_dir: str, emb_dir: str, model_dir: str, resume: bool = False,
          strategy_name: str = "default", logical_cpus: int = 0, threads: int = 0):
    """Trains into model_dir (or goes on with it, resume) and returns the Trainer. Everything that
    can be wrong with the paths, the data and the vocabularies is found before anything is written."""
    check_paths(data_dir, emb_dir, model_dir, resume)
    splits = {split: read_split(data_dir, split) for split in ("train", "dev")}
    check_data_fits(config, load_vocabulary(model_dir if resume else emb_dir), data_dir, splits)
    train_sentences, dev_sentences = splits["train"], splits["dev"]
    dev_scheme = detect_scheme(s.tags for s in dev_sentences)
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
