"""Single-sentence tagging latency on one thread: Python (the frozen graph on the C++ runner's
library, as inference.py runs it once built, and in a TensorFlow session; the SavedModel
signature when exported; ONNX folders on ONNX Runtime) and the C++ runner, plus where the time
goes in the frozen graph (timing the graph cut after each part: featurization, embeddings,
BiLSTM, CRF).

    python experiments/benchmark_latency.py --model_dir runs/NAME --input FILE.conll [--record]

Needs runs/NAME/frozen (freeze.py); the C++ figure needs build/cc/tagger, the SavedModel one
runs/NAME/export and the ONNX ones runs/NAME/onnx and runs/NAME/onnx-int8 (benchmark_onnx.py
writes them). Each sentence is tagged alone; the Python runtimes take turns, 100 sentences at a
time (turns_ms). --record adds the medians to experiments/results.json.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from ner import tf_options  # noqa: E402

tf_options.prefer_plain_cpu_kernels()  # as inference.py does, before serving imports TensorFlow
import results  # noqa: E402
from benchmark_onnx import INT8_DIR  # noqa: E402

from ner import model_folder  # noqa: E402
from ner.data import conll  # noqa: E402
from ner.model.tagging import tag_sentences  # noqa: E402
from ner.serving import loaders  # noqa: E402
from ner.serving.onnx_tagger import OnnxTagger  # noqa: E402


def single_inputs(sentence: conll.Sentence, feature_columns: list[int]):
    words = np.array([sentence.words], dtype=object)
    features = np.array([[[token[c] for c in feature_columns] for token in sentence.columns]], dtype=object)
    return words, np.array([len(sentence)], dtype=np.int32), features.reshape(1, len(sentence), len(feature_columns))


class Probe(NamedTuple):
    sentence: conll.Sentence
    inputs: tuple  # single_inputs(sentence)
    text: str  # its words joined by spaces: raw text in


def turns_ms(calls: dict, sentences, feature_columns, block: int = 100) -> dict[str, list[float]]:
    """Every call (call(Probe)) on each sentence alone, the calls taking turns a block of sentences
    at a time, so that a change in the machine's load hits them alike while each finds its weights
    in cache as when it serves alone (after another runtime the first sentence pays for refilling
    it: the first of each block is left out) -> ms per call for each name."""
    times = {name: [] for name in calls}
    probes = [Probe(sentence, single_inputs(sentence, feature_columns), " ".join(sentence.words)) for sentence in sentences]
    for first in range(0, len(probes), block):
        for name, call in calls.items():
            for i, probe in enumerate(probes[first:first + block]):
                start = time.perf_counter()
                call(probe)
                if i:
                    times[name].append((time.perf_counter() - start) * 1000)
    return times


def tagged_text(model, text: str):
    """Raw text through the model's tokenizer, then predict."""
    (tokens,) = model.tokenize([text])
    words = np.array([[word for word, _, _ in tokens]], dtype=object)
    return model.predict(words, np.array([len(tokens)], np.int32), np.zeros((1, len(tokens), 0), dtype=object))


def stages(frozen: loaders.FrozenTagger) -> list[tuple[str, list[str]]]:
    """Cumulative cut points of a BiLSTM-CRF frozen graph: (what running up to it adds, tensors to
    fetch). A session computes only what its fetches need, so the difference between the times
    of consecutive stages is what that stage costs."""
    operations = [op for op in frozen.graph.get_operations() if not op.name.startswith("tokenize/")]  # the tagger's

    def outputs_of(types, index=0):
        return [op.outputs[index].name for op in operations if op.type in types]

    lengths = frozen.graph.get_tensor_by_name("lengths:0").name
    return [("session call (feed, fetch an input)", [lengths]),
            ("strings -> ids (lookups, shapes)", outputs_of({"LookupTableFindV2", "StaticRegexFullMatch"})),
            ("embeddings, char CNN", [op.inputs[1].name for op in operations if op.type == "BlockLSTM"]),
            ("BiLSTM (BlockLSTM)", outputs_of({"BlockLSTM"}, index=6)),
            ("projection", [op.outputs[0].name for op in operations if op.type == "MatMul"]),
            ("CRF Viterbi decode (tags)", [frozen.outputs["tags"]]),
            ("CRF marginals (confidence)", [frozen.outputs["tags"], frozen.outputs["confidence"]])]


def breakdown(frozen, sentences, feature_columns) -> list[tuple[str, float]]:
    """-> (stage, median ms it adds per sentence) for each stage the graph has. The stages take
    turns on each sentence, so a change in the machine's load hits them alike."""
    present = [(name, frozen.runner(fetches)) for name, fetches in stages(frozen) if fetches]
    times = {name: [] for name, _ in present}
    for sentence in sentences:
        inputs = single_inputs(sentence, feature_columns)
        for name, run in present:
            start = time.perf_counter()
            run(*inputs)
            times[name].append((time.perf_counter() - start) * 1000)
    rows, previous = [], 0.0
    for name, _ in present:
        median = statistics.median(times[name][1:])
        rows.append((name, median - previous))
        previous = median
    return rows


def cpp_latency_ms(binary: str, frozen: str, input_path: str, *options: str) -> tuple[float, float]:
    """-> (mean, median) ms per sentence that the C++ runner reports on stderr."""
    with open(input_path, "rb") as source:
        done = subprocess.run([binary, frozen, "--threads", "1", *options], stdin=source, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, check=True)
    match = re.search(rb"mean ([0-9.]+) ms, median ([0-9.]+) ms", done.stderr)
    return float(match.group(1)), float(match.group(2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="model folder with frozen/ (and optionally export/)")
    parser.add_argument("--input", required=True, help="CoNLL file whose sentences are tagged one at a time")
    parser.add_argument("--tagger", default=os.path.join(ROOT, "build", "cc", "tagger"), help="the C++ runner")
    parser.add_argument("--record", action="store_true", help="add the medians to experiments/results.json")
    args = parser.parse_args(argv)
    tf_options.limit_threads(1)  # the checkpoint and the SavedModel run eagerly: one thread, process-wide
    sentences = [s for s in conll.read_conll(args.input, tagged=False) if not s.docstart]
    frozen_dir = os.path.join(args.model_dir, model_folder.FROZEN_DIR)
    frozen = loaders.FrozenTagger(frozen_dir, threads=1)
    columns = frozen.config.feature_columns
    print(f"{len(sentences)} sentences, {statistics.mean(len(s) for s in sentences):.1f} tokens on average")

    # name -> (results.json metric or None, call): every Python runtime on the same sentences, in turn.
    calls = {}
    library = os.path.join(os.path.dirname(args.tagger), "libtagger.so")
    if os.path.exists(library):  # what inference.py runs a frozen folder on once the runner is built
        native = loaders.NativeFrozenTagger(frozen_dir, library, threads=1)
        calls["Python, libtagger"] = ("latency_ms_python_1thread", lambda item: native.predict(*item.inputs))
        if not columns:  # raw text: the sentences' words joined by spaces
            calls["Python, libtagger, raw text in"] = ("latency_ms_python_text_1thread",
                                                       lambda item: tagged_text(native, item.text))
    for folder in (os.path.join(args.model_dir, model_folder.ONNX_DIR), os.path.join(args.model_dir, INT8_DIR)):
        if os.path.isdir(folder):
            onnx = OnnxTagger(folder, threads=1)
            kind = "onnx_int8" if onnx.int8 else "onnx"
            calls[f"Python, {kind}"] = (f"latency_ms_{kind}_1thread", lambda item, onnx=onnx: onnx.predict(*item.inputs))
            if not columns:
                calls[f"Python, {kind}, raw text in"] = (f"latency_ms_{kind}_text_1thread",
                                                         lambda item, onnx=onnx: tagged_text(onnx, item.text))
    calls["Python, TF session"] = ("latency_ms_python_session_1thread", lambda item: frozen.predict(*item.inputs))
    export_dir = os.path.join(args.model_dir, model_folder.EXPORT_DIR)
    if os.path.isdir(export_dir):
        exported = loaders.ExportedTagger(export_dir)
        calls["Python, SavedModel"] = (None, lambda item: exported.predict(*item.inputs))
    checkpoint = loaders.load_checkpoint(args.model_dir)
    calls["checkpoint, predict"] = ("latency_ms_predict_checkpoint_1thread",
                                    lambda item: checkpoint.predict(*item.inputs))
    calls["checkpoint, tag_sentences"] = ("latency_ms_tag_sentences_checkpoint_1thread",
                                          lambda item: tag_sentences(checkpoint, [item.sentence], "iob2", 1))
    medians = {}
    for name, times in turns_ms({name: call for name, (_, call) in calls.items()}, sentences, columns).items():
        metric = calls[name][0]
        if metric:
            medians[metric] = statistics.median(times)
        print(f"{name + ':':40s} mean {statistics.mean(times):.3f} ms, median {statistics.median(times):.3f} ms per sentence")
    if os.path.exists(args.tagger):
        mean, median = cpp_latency_ms(args.tagger, frozen_dir, args.input)
        medians["latency_ms_cpp_1thread"] = median
        print(f"C++ runner, frozen:     mean {mean:.3f} ms, median {median:.3f} ms per sentence")
    if not columns and os.path.exists(args.tagger):  # raw text: the sentences' words joined by spaces
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8") as lines:
            lines.write("".join(" ".join(s.words) + "\n" for s in sentences))
            lines.flush()
            mean, median = cpp_latency_ms(args.tagger, frozen_dir, lines.name, "--format", "text")
        medians["latency_ms_cpp_text_1thread"] = median
        print(f"C++ runner, raw text:   mean {mean:.3f} ms, median {median:.3f} ms per text")

    print("\nfrozen graph, Python session, median ms each stage adds (stage minus the one before):")
    for name, ms in breakdown(frozen, sentences, columns):
        print(f"  {name:40s} {ms:7.3f} ms")

    if args.record:
        data = os.path.basename(args.input)
        command = f"python experiments/benchmark_latency.py --model_dir {args.model_dir} --input {args.input}"
        for metric, value in medians.items():
            results.record(os.path.basename(os.path.normpath(args.model_dir)), os.path.join(args.model_dir, "config.json"),
                           data, metric, {"value": round(value, 3)}, "ms per sentence (median)", command)
        results.render()


if __name__ == "__main__":
    main()
