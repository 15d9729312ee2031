"""Trains a tagger, keeping the checkpoint with the best dev score (early stopping).

    ner-train --config experiments/bilstm_crf.json --data_dir DATA --emb_dir embeddings/NAME \\
        --model_dir runs/NAME [--seed N] [--epochs N] [--set key=value ...] [--resume] \\
        [--strategy default|mirrored|multi_worker] [--threads N]

The model folder receives config.json, the vocabularies, checkpoints/best (the model to
use), checkpoints/last (to --resume), history.jsonl (one line per epoch) and logs/ (TensorBoard).
One run at a time holds it (a second is refused with the first one's PID). A run killed at any
moment continues with --resume from its last finished epoch; before one finished, the same
command starts afresh. A new run that fails before its first epoch leaves no model folder.
"""
from __future__ import annotations

import argparse

from ner import cli
from ner.data import limits


def run(argv=None):
    """Trains as the command line `argv` asks and returns the Trainer (tests read its variables)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="JSON file of config keys (e.g. experiments/bilstm_crf.json); defaults otherwise")
    parser.add_argument("--data_dir", required=True, help="folder with train.txt and dev.txt (CoNLL columns, tag last)")
    parser.add_argument("--emb_dir", required=True, help="output folder of ner-embvec (vocabularies + embeddings)")
    parser.add_argument("--model_dir", required=True, help="where the model is written (e.g. runs/NAME)")
    parser.add_argument("--seed", type=int, help="random seed (config key seed); the same seed gives the same model on CPU")
    parser.add_argument("--epochs", type=int,
                        help="maximum number of epochs (config key epochs); with --resume, a new cap for the run "
                             "(lower: it ends after that epoch, as a run started with that cap would)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key, value in JSON (e.g. --set lstm_layers=2 --set use_crf=false)")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted run from its last finished epoch, with the config saved in "
                             "--model_dir (--config, --set and --seed are not read)")
    parser.add_argument("--strategy", choices=("default", "mirrored", "multi_worker"), default="default",
                        help="default: one device; mirrored: every local GPU (tf.distribute.MirroredStrategy); "
                             "multi_worker: the cluster in TF_CONFIG (MultiWorkerMirroredStrategy), the same "
                             "command on every host. batch_size is the global batch; only the chief writes files")
    parser.add_argument("--logical_cpus", type=int, default=0, metavar="N",
                        help="with --strategy mirrored: split the CPU into N logical devices, one replica each "
                             "(to test or measure the distributed step without GPUs)")
    parser.add_argument("--threads", type=int, default=0, metavar="N",
                        help="TensorFlow threads per pool (intra-op and inter-op); 0: one per core. Use 1 when "
                             "several trainings share the cores. The same seed gives the same model for the same N")
    limits.add_arguments(parser)
    args = cli.parse_args(parser, argv)
    with cli.user_errors():
        from ner.training.run import make_config, train
        config = make_config(args.model_dir, args.resume, args.config, args.set, args.seed, args.epochs)
        return train(config, args.data_dir, args.emb_dir, args.model_dir, resume=args.resume,
                     strategy_name=args.strategy, logical_cpus=args.logical_cpus, threads=args.threads,
                     limits=limits.from_arguments(args))


def main(argv=None) -> None:
    """The command: its exit status is 0 once the model is trained (a console script exits with what
    main returns, so it returns nothing)."""
    run(argv)
