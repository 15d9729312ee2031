"""Batch tagging throughput of inference.py's path (load_model + tag_sentences) on all
cores: tokens per second over a whole CoNLL file for a model folder, its export/, its
frozen/, onnx/ and onnx-int8/ folders (benchmark_onnx.py writes the last two), with each one's
load time and the process's peak resident memory.

    python experiments/benchmark_throughput.py --model_dir runs/NAME --input FILE.conll [--record]

Each folder tags the file once untimed (that traces and optimises the graph for the batch
shapes), then the folders take turns for --rounds timed passes; the median is reported.
--record adds the figures to experiments/results.json.
"""
from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from ner import tf_options  # noqa: E402

tf_options.prefer_plain_cpu_kernels()  # as inference.py does, before serving imports TensorFlow
import results  # noqa: E402
from benchmark_onnx import INT8_DIR  # noqa: E402

from ner import model_folder  # noqa: E402
from ner.data import conll  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="model folder (its export/ and frozen/ are used when present)")
    parser.add_argument("--input", required=True, help="CoNLL file to tag")
    parser.add_argument("--batch_size", type=int, default=256, help="sentences per batch (inference.py's default)")
    parser.add_argument("--rounds", type=int, default=5, help="timed passes over the file per folder (default 5)")
    parser.add_argument("--record", action="store_true", help="add the figures to experiments/results.json")
    args = parser.parse_args(argv)
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import load_model
    sentences = [s for s in conll.read_conll(args.input, tagged=False) if not s.docstart]
    tokens = sum(len(s) for s in sentences)
    print(f"{len(sentences)} sentences, {tokens} tokens, batch {args.batch_size}")
    figures, models = {}, {}
    for kind, folder in (("checkpoint", args.model_dir), ("export", os.path.join(args.model_dir, model_folder.EXPORT_DIR)),
                         ("frozen", os.path.join(args.model_dir, model_folder.FROZEN_DIR)),
                         ("onnx", os.path.join(args.model_dir, model_folder.ONNX_DIR)),
                         ("onnx_int8", os.path.join(args.model_dir, INT8_DIR))):
        if not os.path.isdir(folder):
            continue
        started = time.perf_counter()
        models[kind] = load_model(folder)
        figures[f"load_s_{kind}"] = (round(time.perf_counter() - started, 2), "s")
        tag_sentences(models[kind], sentences, "iob2", args.batch_size)  # traces and optimises for the batch shapes
    passes = {kind: [] for kind in models}
    for _ in range(args.rounds):  # the folders take turns, so that a change in the machine's load hits them alike
        for kind, model in models.items():
            # TensorFlow's and ONNX Runtime's worker threads spin a while after their work: the next
            # runtime's pass would share the 2 cores with them (ONNX Runtime's passes then ranged 21k-50k).
            time.sleep(1.0)
            started = time.perf_counter()
            tag_sentences(model, sentences, "iob2", args.batch_size)
            passes[kind].append(tokens / (time.perf_counter() - started))
    for kind, speeds in passes.items():
        figures[f"throughput_tokens_per_s_{kind}"] = (round(statistics.median(speeds)), "tokens/s")
        print(f"{kind:10s} load {figures[f'load_s_{kind}'][0]:6.2f} s, median {statistics.median(speeds):9.0f} tokens/s "
              f"({', '.join(f'{speed:.0f}' for speed in speeds)})")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["peak_rss_mb"] = (round(peak_mb), "MB (all loaders in one process)")
    print(f"peak resident memory {peak_mb:.0f} MB")
    if args.record:
        command = f"python experiments/benchmark_throughput.py --model_dir {args.model_dir} --input {args.input}"
        name = os.path.basename(os.path.normpath(args.model_dir))
        for metric, (value, unit) in figures.items():
            results.record(name, os.path.join(args.model_dir, "config.json"), os.path.basename(args.input), metric,
                           {"value": value}, unit, command)
        results.render()


if __name__ == "__main__":
    main()
