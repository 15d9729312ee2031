"""Trains a configuration on CoNLL-2003 for one or more seeds and records conlleval dev and
test F1 and seconds per epoch in experiments/results.json (then RESULTS.md).

    python experiments/benchmark_conll.py --config experiments/bilstm_crf.json --seeds 1 2 3
    python experiments/benchmark_conll.py --config experiments/bilstm_crf.json --timing_epochs 3

Each seed is a separate train.py run into runs/bench/NAME-seedN; results accumulate, so
seeds can run in separate sessions. Seconds per epoch are recorded only from a run that had
the machine to itself: with --concurrent K (K runs sharing the machine) they are kept in the
F1 entries as s_per_epoch_shared; --timing_epochs N trains N epochs alone just for the timing.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import results  # noqa: E402

from ner.data import conlleval  # noqa: E402


def run(command: list[str], **kwargs):
    print("+ " + shlex.join(command), file=sys.stderr, flush=True)
    subprocess.run(command, check=True, cwd=ROOT, **kwargs)


def conlleval_f1(pred_path: str) -> float:
    with open(pred_path, encoding="utf-8") as f:
        counts = conlleval.evaluate(f)
    return round(conlleval.metrics(counts)[2], 2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="experiments/bilstm_crf.json", help="configuration to train")
    parser.add_argument("--data_dir", default="../shared/data/conll2003", help="CoNLL-2003 folder")
    parser.add_argument("--emb", default="glove-6b-50d", help="embvec.py --emb (default glove-6b-50d)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1], help="seeds to run, one training each")
    parser.add_argument("--name", help="result name (default: the config file's name)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed on to train.py")
    parser.add_argument("--epochs", type=int, help="passed on to train.py: the maximum number of epochs")
    parser.add_argument("--resume", action="store_true",
                        help="continue each seed's interrupted run in its folder (train.py --resume), then score it; "
                             "with --epochs at the epochs it finished, score a run stopped there as it is. The "
                             "command recorded is the fresh run's: resuming gives the same model")
    parser.add_argument("--concurrent", type=int, default=1,
                        help="how many benchmark runs share the machine (>1: seconds per epoch are not a clean figure)")
    parser.add_argument("--threads", type=int, default=0,
                        help="passed on to train.py: TensorFlow threads per pool (0: one per core; 1 suits "
                             "--concurrent runs)")
    parser.add_argument("--timing_epochs", type=int,
                        help="only time this many epochs (fresh run, no scoring) and record train_s_per_epoch")
    args = parser.parse_args(argv)
    name = args.name or os.path.splitext(os.path.basename(args.config))[0]
    python = sys.executable
    emb_dir = os.path.join("embeddings", f"conll2003-{args.emb.replace('/', '_')}")
    if not os.path.exists(os.path.join(ROOT, emb_dir, "meta.json")):
        run([python, "embvec.py", "--data_dir", args.data_dir, "--emb", args.emb, "--out", emb_dir])
    train_flags = [x for assignment in args.set for x in ("--set", assignment)]
    if args.threads:
        train_flags += ["--threads", str(args.threads)]
    data = os.path.basename(os.path.normpath(args.data_dir))
    for seed in args.seeds:
        suffix = "-timing" if args.timing_epochs else ""
        model_dir = os.path.join("runs", "bench", f"{name}{suffix}-seed{seed}")
        if args.timing_epochs:
            shutil.rmtree(os.path.join(ROOT, model_dir), ignore_errors=True)
            train_flags_for_run = train_flags + ["--epochs", str(args.timing_epochs)]
        else:
            train_flags_for_run = train_flags + (["--epochs", str(args.epochs)] if args.epochs else [])
            if args.resume:
                train_flags_for_run.append("--resume")
        run([python, "train.py", "--config", args.config, "--data_dir", args.data_dir, "--emb_dir", emb_dir,
             "--model_dir", model_dir, "--seed", str(seed)] + train_flags_for_run)
        with open(os.path.join(ROOT, model_dir, "history.jsonl"), encoding="utf-8") as f:
            history = [json.loads(line) for line in f]
        seconds = round(statistics.median(h["train_seconds"] for h in history), 1)
        command = (f"python experiments/benchmark_conll.py --config {args.config}"
                   + (f" --name {args.name}" if args.name else "") + f" --seeds {seed}"
                   + "".join(f" --set {shlex.quote(a)}" for a in args.set)
                   + (f" --epochs {args.epochs}" if args.epochs and not args.timing_epochs else "")
                   + (f" --threads {args.threads}" if args.threads else ""))
        if args.timing_epochs:
            results.record(name, args.config, data, "train_s_per_epoch", {"seed": seed, "value": seconds},
                           "s (median)", command + f" --timing_epochs {args.timing_epochs}")
            print(f"{name} seed {seed}: {seconds:.1f} s/epoch", file=sys.stderr)
            continue
        scores = {}
        for split in ("dev", "test"):
            pred = os.path.join(ROOT, model_dir, f"{split}.pred.txt")
            run([python, "inference.py", "--model_dir", model_dir, "--input",
                 os.path.join(args.data_dir, f"{split}.txt"), "--output", pred])
            scores[split] = conlleval_f1(pred)
        best = max(h["epoch"] for h in history if h["best"])
        run_info = {"seed": seed, "best_epoch": best, "epochs": len(history)}
        if args.concurrent > 1:
            run_info["s_per_epoch_shared"] = seconds
            command += f" --concurrent {args.concurrent}"
        else:
            results.record(name, args.config, data, "train_s_per_epoch",
                           {**run_info, "value": seconds}, "s (median)", command)
        results.record(name, args.config, data, "test_f1", {**run_info, "value": scores["test"]}, "conlleval F1",
                       command)
        results.record(name, args.config, data, "dev_f1", {**run_info, "value": scores["dev"]}, "conlleval F1",
                       command)
        print(f"{name} seed {seed}: dev F1 {scores['dev']}, test F1 {scores['test']}, {seconds:.1f} s/epoch, "
              f"best epoch {best}", file=sys.stderr)
    results.render()


if __name__ == "__main__":
    main()
