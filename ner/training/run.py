"""train.py's one call: the config, the data, the model folder and the strategy, then the Trainer."""
from __future__ import annotations

import contextlib
import os
import sys

from ner import model_folder, paths
from ner.config import Config
from ner.data.conll import Sentence, check_feature_columns, read_split
from ner.data.limits import Limits
from ner.data.schemes import detect_scheme
from ner.data.vocabulary import Vocabulary, load_vocabulary


def make_config(model_dir: str, resume: bool, config_path: str | None = None, overrides: list[str] = (),
                seed: int | None = None, epochs: int | None = None) -> Config:
    """Defaults, then the JSON file, then the overrides and the seed; when resuming, the run's own
    config, of which only the epoch cap may change (to end a run early or extend it)."""
    if resume:
        paths.input_folder(model_dir, "--model_dir")
        path = os.path.join(model_dir, model_folder.CONFIG)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{model_dir}: nothing to resume: no run got as far as writing its "
                                    f"{model_folder.CONFIG}; run the command without --resume")
        config = Config.load(path)
    else:
        config = Config.load(config_path) if config_path else Config()
        config = config.with_overrides(list(overrides))
        if seed is not None:
            config = config.replace(seed=seed)
    if epochs is not None:
        config = config.replace(epochs=epochs)
    return config


def start_model_folder(config: Config, vocab: Vocabulary, model_dir: str) -> None:
    """A new run's files: a copy of the vocabularies, so the model carries its own, then its
    config, written last: a folder with a config.json holds the whole vocabulary."""
    for name in vocab.files:
        model_folder.copy_file(os.path.join(vocab.folder, name), os.path.join(model_dir, name))
    config.save(os.path.join(model_dir, model_folder.CONFIG))


def check_paths(data_dir: str, emb_dir: str, model_dir: str, resume: bool) -> None:
    """Read only: the inputs exist and --model_dir is one train.py may write (new, empty, or a
    model folder holding only what train.py writes)."""
    paths.input_folder(data_dir, "--data_dir")
    if resume:
        paths.input_folder(model_dir, "--model_dir")
    else:
        paths.input_folder(emb_dir, "--emb_dir")
        paths.output_folder(model_dir, "--model_dir")
        if os.path.exists(model_dir) and os.path.samefile(model_dir, emb_dir):
            raise ValueError(f"{model_dir}: --model_dir is the --emb_dir; a model folder gets its own copy of the "
                             "vocabularies, so give another folder")
    model_folder.check_writable(model_dir, model_folder.TRAIN_KIND, "--model_dir")


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
          strategy_name: str = "default", logical_cpus: int = 0, threads: int = 0, limits: Limits = Limits()):
    """Trains into model_dir (or goes on with it, resume) and returns the Trainer. Everything that
    can be wrong with the paths, the data and the vocabularies is found before anything is written.

    The run holds the model folder's lock throughout (model_folder.writing). A run killed at any
    moment is continued with --resume from its last finished epoch; when none finished, the same
    command (or --resume) starts afresh, replacing only what train.py writes. A new run that fails
    before its first finished epoch removes what it wrote (the folder too, when it made it)."""
    check_paths(data_dir, emb_dir, model_dir, resume)
    splits = {split: read_split(data_dir, split, limits=limits) for split in ("train", "dev")}
    if not resume:
        check_data_fits(config, load_vocabulary(emb_dir), data_dir, splits)
    train_sentences, dev_sentences = splits["train"], splits["dev"]
    dev_scheme = detect_scheme(s.tags for s in dev_sentences)
    # TensorFlow is imported only now, so argument errors stay fast; the strategy is made before any
    # TensorFlow op runs (multi-worker collectives and logical devices need that).
    from ner import tf_options
    from ner.training import distribute
    from ner.training.checkpoints import finished_checkpoint, holds_a_model
    tf_options.limit_threads(threads)
    strategy = distribute.make_strategy(strategy_name, logical_cpus)
    chief = distribute.is_chief(strategy)  # only the chief writes the folder, so only it locks it
    with (model_folder.writing(model_dir, model_folder.TRAIN_KIND, "--model_dir") if chief
          else contextlib.nullcontext()):
        finished = finished_checkpoint(model_dir)
        afresh = not holds_a_model(model_dir)
        if not afresh and not resume:
            epoch = f" (epoch {finished.rsplit('-', 1)[-1]} finished)" if finished else ""
            raise ValueError(f"{model_dir}: already holds a model{epoch}; use --resume to continue it, or another "
                             "--model_dir")
        if not afresh and finished is None:
            raise FileNotFoundError(f"{model_dir}: nothing to resume: {model_folder.LAST_CHECKPOINTS} holds no finished "
                                    "checkpoint, though the folder holds a model; train again into another --model_dir")
        if resume and afresh:
            print(f"{model_dir}: no epoch finished yet: starting afresh", file=sys.stderr)
        vocab = load_vocabulary(model_dir if resume else emb_dir)
        if resume:
            check_data_fits(config, vocab, data_dir, splits)
        try:
            if afresh and chief:
                # What a run stopped before its first finished epoch left (resuming keeps its config
                # and vocabularies, which a new run writes again).
                model_folder.remove_written(model_dir, model_folder.TRAIN_KIND,
                                            keep=lambda path: resume and "/" not in path and path != model_folder.HISTORY)
                if not resume:
                    start_model_folder(config, vocab, model_dir)
            with resource_errors(model_dir):
                trainer = build_trainer(config, vocab, model_dir, resume and not afresh, strategy)
                trainer.fit(train_sentences, dev_sentences, dev_scheme)
        except BaseException:
            if afresh and chief and not resume and not holds_a_model(model_dir):
                model_folder.remove_written(model_dir, model_folder.TRAIN_KIND)
            raise
    return trainer


@contextlib.contextmanager
def resource_errors(model_dir: str):
    """TensorFlow's out-of-memory error, anywhere in the run, and the errors of a model it cannot
    build (InvalidArgumentError while building) become one line."""
    import tensorflow as tf
    try:
        yield
    except (tf.errors.ResourceExhaustedError, MemoryError) as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{os.path.join(model_dir, model_folder.CONFIG)}: the model does not fit in memory "
                         f"({detail[:300]}); lower its sizes (lstm_units, batch_size, ...)") from None


def make_trainer(config: Config, emb_dir: str, model_dir: str, resume: bool = False, strategy=None):
    """A Trainer on a new model folder made from emb_dir's vocabularies, or on the folder to resume
    (for code that trains without train.py's checks and lock)."""
    from ner.training import distribute
    vocab = load_vocabulary(model_dir if resume else emb_dir)
    if not resume and distribute.is_chief(strategy):
        os.makedirs(model_dir, exist_ok=True)
        model_folder.mark(model_dir, model_folder.TRAIN_KIND)
        start_model_folder(config, vocab, model_dir)
    return build_trainer(config, vocab, model_dir, resume, strategy)


def build_trainer(config: Config, vocab: Vocabulary, model_dir: str, resume: bool = False, strategy=None):
    """A Trainer on a model folder that holds its config and vocabularies (resume: from its last
    finished epoch); a model TensorFlow cannot build is one line."""
    import tensorflow as tf

    from ner.training.trainer import Trainer
    try:
        return Trainer(config, vocab, model_dir, resume=resume, strategy=strategy)
    except tf.errors.InvalidArgumentError as e:
        detail = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise ValueError(f"{os.path.join(model_dir, model_folder.CONFIG)}: TensorFlow cannot build this model "
                         f"({detail[:300]}); check its sizes") from None
