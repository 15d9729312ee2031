"""ONNX folders against the checkpoint they come from (issue 31), through the real commands: for
each model folder, its fp32 ONNX folder (onnx/) and an int8 one (onnx-int8/), exported when
missing, tag a CoNLL file with inference.py.

    python experiments/benchmark_onnx.py --model_dirs runs/bench/NAME-seed1 ... --input FILE.conll [--record]

Per model folder it reports, and --record adds to experiments/results.json (entry NAME_onnx, one
run per seed):
- whether onnx/'s output is byte-identical to the checkpoint's, in CoNLL mode and in raw-text mode
  (the sentences' words joined by spaces, one per line), and the largest confidence difference
  over every token (tag_sentences on both, in this process);
- conlleval F1 of the checkpoint, onnx/ and onnx-int8/ (entries NAME_onnx and NAME_onnx_int8);
- inference.py on the checkpoint, onnx/ and onnx-int8/: wall seconds and peak resident memory
  tagging the file; on onnx/ and onnx-int8/ the start (imports and load) as the median wall time
  of 5 runs on a one-sentence file.
"""
from __future__ import annotations

import argparse
import filecmp
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import results  # noqa: E402
from benchmark_conll import conlleval_f1  # noqa: E402

from ner import model_folder  # noqa: E402
from ner.config import Config  # noqa: E402
from ner.data import conll  # noqa: E402

INT8_DIR = "onnx-int8"


def command(script: str, *args: str) -> list[str]:
    return [sys.executable, os.path.join(ROOT, script), *args]


def run_child(args: list[str]) -> tuple[float, float]:
    """-> (wall seconds, the child's peak resident MB): each measured child runs alone, so its own
    ru_maxrss is read from a fresh process that waits for it."""
    probe = ("import resource, subprocess, sys, time\n"
             "started = time.perf_counter()\n"
             "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)\n"
             "print(time.perf_counter() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
    done = subprocess.run([sys.executable, "-c", probe, *args], check=True, capture_output=True, text=True)
    seconds, megabytes = done.stdout.split()
    return float(seconds), float(megabytes)


def ensure_onnx(model_dir: str, folder: str, *options: str) -> None:
    if not os.path.isdir(folder):
        subprocess.run(command("export.py", "--model_dir", model_dir, "--format", "onnx", "--out", folder, *options),
                       check=True)


def confidence_difference(model_dir: str, onnx_dir: str, sentences) -> tuple[bool, float]:
    """tag_sentences on the checkpoint and on the ONNX folder -> (same tags everywhere, the largest
    confidence difference)."""
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import load_model
    reference = tag_sentences(load_model(model_dir), sentences, "iob2", 256)
    candidate = tag_sentences(load_model(onnx_dir), sentences, "iob2", 256)
    same = all(a[0] == b[0] for a, b in zip(reference, candidate))
    return same, max(float(np.abs(a[1] - b[1]).max(initial=0)) for a, b in zip(reference, candidate))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dirs", nargs="+", required=True, help="model folders written by train.py")
    parser.add_argument("--input", required=True, help="CoNLL file with gold tags (CoNLL-2003 test)")
    parser.add_argument("--record", action="store_true", help="add the figures to experiments/results.json")
    args = parser.parse_args(argv)
    sentences = [s for s in conll.read_conll(args.input, tagged=False) if not s.docstart]
    recorded = f"python experiments/benchmark_onnx.py --model_dirs {' '.join(args.model_dirs)} --input {args.input}"
    with tempfile.TemporaryDirectory() as scratch:
        text_input = os.path.join(scratch, "text.txt")
        with open(text_input, "w", encoding="utf-8") as f:
            f.write("".join(" ".join(s.words) + "\n" for s in sentences))
        one_sentence = os.path.join(scratch, "one.conll")
        with open(one_sentence, "w", encoding="utf-8") as f:
            f.write("".join(f"{word}\n" for word in sentences[0].words) + "\n")
        for model_dir in args.model_dirs:
            config = Config.load(os.path.join(model_dir, model_folder.CONFIG))
            name = re.sub(r"-seed\d+$", "", os.path.basename(os.path.normpath(model_dir)))
            folders = {"onnx": os.path.join(model_dir, model_folder.ONNX_DIR), "onnx_int8": os.path.join(model_dir, INT8_DIR)}
            ensure_onnx(model_dir, folders["onnx"])
            ensure_onnx(model_dir, folders["onnx_int8"], "--int8")
            figures = {}
            outputs = {}
            for kind, folder in (("checkpoint", model_dir), *folders.items()):
                for mode in ("conll", "text"):
                    outputs[kind, mode] = os.path.join(scratch, f"{kind}.{mode}")
                    source = args.input if mode == "conll" else text_input
                    seconds, megabytes = run_child(command("inference.py", "--model_dir", folder, "--input", source,
                                                           "--format", mode, "--output", outputs[kind, mode]))
                    if mode == "conll":
                        figures[f"{kind}_tagging_s"] = (round(seconds, 2), "s (inference.py, the whole file)")
                        figures[f"{kind}_peak_rss_mb"] = (round(megabytes), "MB (inference.py, the whole file)")
                figures[f"{kind}_test_f1"] = (conlleval_f1(outputs[kind, "conll"]), "conlleval F1")
            for mode in ("conll", "text"):
                same = filecmp.cmp(outputs["checkpoint", mode], outputs["onnx", mode], shallow=False)
                figures[f"onnx_identical_{mode}"] = (int(same), "1: byte-identical to the checkpoint's output")
            same_tags, difference = confidence_difference(model_dir, folders["onnx"], sentences)
            figures["onnx_confidence_max_diff"] = (float(f"{difference:.2g}"), "largest |confidence difference|")
            figures["onnx_tags_equal_in_process"] = (int(same_tags), "1: tag_sentences gives the same tags")
            for kind, folder in folders.items():
                starts = []
                for _ in range(5):
                    started = time.perf_counter()
                    subprocess.run(command("inference.py", "--model_dir", folder, "--input", one_sentence),
                                   check=True, stdout=subprocess.DEVNULL)
                    starts.append(time.perf_counter() - started)
                figures[f"{kind}_start_s"] = (round(statistics.median(starts), 3),
                                              "s (inference.py on one sentence, median of 5)")
            print(model_dir)
            for metric, (value, unit) in figures.items():
                print(f"  {metric:28s} {value}  {unit}")
            if args.record:
                for metric, (value, unit) in figures.items():
                    entry = f"{name}_onnx_int8" if metric.startswith("onnx_int8_") else f"{name}_onnx"
                    metric = metric.removeprefix("onnx_int8_").removeprefix("onnx_")
                    results.record(entry, os.path.join(model_dir, model_folder.CONFIG), os.path.basename(args.input),
                                   metric, {"seed": config.seed, "value": value}, unit, recorded)
    if args.record:
        results.render()


if __name__ == "__main__":
    main()
