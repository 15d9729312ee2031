"""Tagging tokens per second: beam_tag.py on Beam's local runner against inference.py alone.

    python experiments/benchmark_beam.py --model_dir runs/NAME --input ../shared/data/conll2003/test.txt \\
        [--shards 4] [--repeats 2] [--record]

The input is dealt into --shards files at sentence boundaries. Each command is timed whole, as a
user runs it (start-up, model load, reading, tagging, writing): inference.py on the whole file;
beam_tag.py on the shards in one process (the FnApiRunner); and beam_tag.py with
`--direct_num_workers 2 --direct_running_mode multi_processing` (two worker processes, each
loading the model once). The outputs are checked: the shards' outputs put together are
inference.py's output (all with --scheme iob2, so that each shard's scheme is the whole
file's). Tokens are the input's non-DOCSTART token lines; the median of --repeats runs is
reported. --record adds them to experiments/results.json.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from ner.data import conll  # noqa: E402


def write_shards(path: str, folder: str, count: int) -> list[str]:
    blocks = open(path, encoding="utf-8").read().strip("\n").split("\n\n")
    paths = []
    for shard in range(count):
        name = os.path.join(folder, f"part-{shard:05d}.txt")
        with open(name, "w", encoding="utf-8") as f:
            f.write("\n\n".join(blocks[shard * len(blocks) // count:(shard + 1) * len(blocks) // count]) + "\n")
        paths.append(name)
    return paths


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True)
    parser.add_argument("--input", required=True, help="a CoNLL file (e.g. CoNLL-2003 test.txt)")
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--record", action="store_true", help="add the medians to experiments/results.json")
    args = parser.parse_args(argv)

    sentences = conll.read_conll(args.input, tagged=False)
    tokens = sum(len(s) for s in sentences if not s.docstart)
    python = sys.executable
    with tempfile.TemporaryDirectory() as work:
        os.makedirs(os.path.join(work, "in"))
        shards = write_shards(args.input, os.path.join(work, "in"), args.shards)
        reference = os.path.join(work, "reference.txt")
        variants = {
            "inference_py": [python, "inference.py", "--model_dir", args.model_dir, "--input", args.input,
                             "--output", reference, "--scheme", "iob2"],
            "beam_local": [python, "beam_tag.py", "--model_dir", args.model_dir, "--input",
                           os.path.join(work, "in", "*.txt"), "--output", os.path.join(work, "beam1"),
                           "--scheme", "iob2"],
            "beam_local_2_processes": [python, "beam_tag.py", "--model_dir", args.model_dir, "--input",
                                       os.path.join(work, "in", "*.txt"), "--output", os.path.join(work, "beam2"),
                                       "--scheme", "iob2", "--direct_num_workers", "2",
                                       "--direct_running_mode", "multi_processing"],
        }
        seconds = {name: [] for name in variants}
        for _ in range(args.repeats):
            for name, command in variants.items():
                load = os.getloadavg()[0]
                seconds[name].append(timed(command))
                print(f"{name:24s} {seconds[name][-1]:7.2f} s, {tokens / seconds[name][-1]:9.0f} tokens/s "
                      f"(load average before {load:.2f})")
        expected = open(reference, "rb").read()
        for output in ("beam1", "beam2"):
            together = b"".join(open(os.path.join(work, output, os.path.basename(p)), "rb").read() for p in shards)
            identical = together == expected
            print(f"{output}: shards' outputs together {'==' if identical else '!='} inference.py's output")
            if not identical:
                raise SystemExit("outputs differ")
    rates = {name: tokens / statistics.median(values) for name, values in seconds.items()}
    print(f"{tokens} tokens; median tokens/s: " + ", ".join(f"{name} {rate:.0f}" for name, rate in rates.items()))
    if args.record:
        sys.path.insert(0, HERE)
        import results
        model = os.path.basename(os.path.normpath(args.model_dir))
        command = (f"python experiments/benchmark_beam.py --model_dir {args.model_dir} --input {args.input} "
                   f"--shards {args.shards} --repeats {args.repeats}")
        for name, rate in rates.items():
            results.record(model, os.path.join(args.model_dir, "config.json"), os.path.basename(args.input),
                           f"tagging_tokens_per_s_{name}",
                           {"value": round(rate), "seconds": [round(s, 2) for s in seconds[name]], "tokens": tokens},
                           "tokens/s (median, whole command)", command)
        results.render()


if __name__ == "__main__":
    main()
