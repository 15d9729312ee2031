"""Training steps per second: --strategy default against mirrored over 2 logical CPU devices.

    python experiments/benchmark_distribute.py --config experiments/bilstm_crf.json \\
        --data_dir ../shared/data/conll2003 --emb_dir embeddings/conll2003-glove-6b-50d [--steps 300] [--record]

Both take the same global batches (the first batches of epoch 1, batch_size from the config)
through train.py's step: default is the single-device step; mirrored splits each global batch
over 2 replicas on the same 2 cores, so it shows the distributed step's overhead (replica
shares, the gradient all-reduce), not a speed-up, which needs more devices. Each strategy runs
in its own process (logical devices must be set before TensorFlow starts), alternately,
--repeats times; the median steps per second is reported. --record adds them to
experiments/results.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)


def measure(strategy: str, args) -> dict:
    """In this process: `args.steps` timed steps after `args.warmup` untimed ones."""
    from ner.training import distribute
    made = distribute.make_strategy(strategy, logical_cpus=2 if strategy == "mirrored" else 0)
    from ner.data.batching import make_dataset
    from ner.data.conll import read_split
    from ner.data.schemes import detect_scheme
    from ner.training.run import make_config, make_trainer
    config = make_config("unused", False, args.config)
    sentences = read_split(args.data_dir, "train")
    scheme = detect_scheme(s.tags for s in sentences)
    with tempfile.TemporaryDirectory() as folder:
        trainer = make_trainer(config, args.emb_dir, folder, strategy=made)
        dataset = make_dataset(sentences, config.feature_columns, config.batch_size,
                               tag_scheme=(scheme, config.tag_scheme), shuffle_seed=config.seed * 100003)
        batches = list(dataset.take(args.warmup + args.steps))
        for batch in batches[:args.warmup]:
            trainer.step(batch)
        started = time.perf_counter()
        for batch in batches[args.warmup:]:
            loss, _ = trainer.step(batch)
        float(loss)
        seconds = time.perf_counter() - started
    return {"strategy": strategy, "steps": len(batches) - args.warmup, "seconds": seconds,
            "steps_per_s": (len(batches) - args.warmup) / seconds,
            "replicas": made.num_replicas_in_sync if made is not None else 1, "batch_size": config.batch_size}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.path.join(HERE, "bilstm_crf.json"))
    parser.add_argument("--data_dir", required=True)
    parser.add_argument("--emb_dir", required=True)
    parser.add_argument("--steps", type=int, default=300, help="timed steps per run (default 300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed steps first (tracing; default 30)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per strategy, alternating (default 2)")
    parser.add_argument("--record", action="store_true", help="add the medians to experiments/results.json")
    parser.add_argument("--child", choices=("default", "mirrored"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return

    runs = {"default": [], "mirrored": []}
    for _ in range(args.repeats):
        for strategy in runs:
            command = [sys.executable, os.path.abspath(__file__), "--child", strategy, "--config", args.config,
                       "--data_dir", args.data_dir, "--emb_dir", args.emb_dir, "--steps", str(args.steps),
                       "--warmup", str(args.warmup)]
            load = os.getloadavg()[0]
            done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                                  env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if done.returncode != 0:
                raise SystemExit(done.stderr[-3000:])
            result = json.loads(done.stdout.strip().splitlines()[-1])
            result["load_before"] = round(load, 2)
            runs[strategy].append(result)
            print(f"{strategy:9s} {result['replicas']} replica(s): {result['steps_per_s']:.2f} steps/s "
                  f"({result['steps']} steps of {result['batch_size']} sentences, load average before {load:.2f})")
    medians = {strategy: statistics.median(r["steps_per_s"] for r in results) for strategy, results in runs.items()}
    print(f"median steps/s: default {medians['default']:.2f}, mirrored over 2 logical CPUs "
          f"{medians['mirrored']:.2f} ({medians['mirrored'] / medians['default']:.2f}x)")
    if args.record:
        sys.path.insert(0, HERE)
        import results
        name = os.path.splitext(os.path.basename(args.config))[0]
        command = (f"python experiments/benchmark_distribute.py --config {os.path.relpath(args.config, ROOT)} "
                   f"--data_dir {args.data_dir} --emb_dir {args.emb_dir} --steps {args.steps} --repeats {args.repeats}")
        for strategy, metric in (("default", "train_steps_per_s_default"),
                                 ("mirrored", "train_steps_per_s_mirrored_2_logical_cpus")):
            loads = [r["load_before"] for r in runs[strategy]]
            results.record(name, os.path.relpath(args.config, ROOT), os.path.basename(os.path.normpath(args.data_dir)),
                           metric, {"value": round(medians[strategy], 2),
                                    "runs": [round(r["steps_per_s"], 2) for r in runs[strategy]],
                                    "load_average_before": loads},
                           "steps/s (median)", command)
        results.render()


if __name__ == "__main__":
    main()
