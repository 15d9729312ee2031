"""Single-sentence tagging latency on one thread: Python (the frozen graph on the C++ runner's
library, as inference.py runs it once built, and in a TensorFlow session; the SavedModel
signature when exported; ONNX folders on ONNX Runtime) and the C++ runner, plus where the time goes in the frozen graph
(timing the graph cut after each part: featurization, embeddings, BiLSTM, CRF).

    python experiments/benchmark_latency.py --model_dir runs/NAME --input FILE.conll [--record]

Needs runs/NAME/frozen (freeze.py); the C++ figure needs build/cc/tagger, the SavedModel one
runs/NAME/export and the ONNX ones runs/NAME/onnx and runs/NAME/onnx-int8 (benchmark_onnx.py
writes them). Each sentence is tagged alone, in file order; the first is left out (it pays
for graph optimisation). --record adds the medians to experiments/results.json.
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

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402

from ner import tf_options  # noqa: E402

tf_options.prefer_plain_cpu_kernels()  # as inference.py does, before serving imports TensorFlow
import results  # noqa: E402

from ner import model_folder  # noqa: E402
from ner.data import conll  # noqa: E402
from ner.model.tagging import tag_sentences  # noqa: E402
from ner.serving import loaders  # noqa: E402
from ner.serving.onnx_tagger import OnnxTagger  # noqa: E402

from benchmark_onnx import INT8_DIR  # noqa: E402


def single_inputs(sentence: conll.Sentence, feature_columns: list[int]):
    words = np.array([sentence.words], dtype=object)
    features = np.array([[[token[c] for c in feature_columns] for token in sentence.columns]], dtype=object)
    return words, np.array([len(sentence)], dtype=np.int32), features.reshape(1, len(sentence), len(feature_columns))


def latencies_ms(predict, sentences, feature_columns) -> list[float]:
    """predict(words, lengths, features) on each sentence alone -> ms per call, the first left out."""
    times = []
    for sentence in sentences:
        inputs = single_inputs(sentence, feature_columns)
        start = time.perf_counter()
        predict(*inputs)
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]


def tagging_overhead_ms(model, sentences, feature_columns) -> tuple[list[float], list[float]]:
    """model.predict alone against tag_sentences (what inference.py, the service and Beam call)
    on each sentence alone, taking turns so that a change in load hits both alike -> (ms per
    predict call, ms per tag_sentences call), the first sentence left out."""
    predict_times, tagging_times = [], []
    for sentence in sentences:
        inputs = single_inputs(sentence, feature_columns)
        start = time.perf_counter()
        model.predict(*inputs)
        predict_times.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        tag_sentences(model, [sentence], "iob2", 1)
        tagging_times.append((time.perf_counter() - start) * 1000)
    return predict_times[1:], tagging_times[1:]


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


def text_latencies_ms(model, sentences) -> list[float]:
    """Each sentence as raw text (its words joined by spaces): the model's tokenizer graph, then
    predict -> ms per text, the first left out."""
    times = []
    for sentence in sentences:
        text = " ".join(sentence.words)
        start = time.perf_counter()
        (tokens,) = model.tokenize([text])
        words = np.array([[word for word, _, _ in tokens]], dtype=object)
        model.predict(words, np.array([len(tokens)], np.int32), np.zeros((1, len(tokens), 0), dtype=object))
        times.append((time.perf_counter() - start) * 1000)
    return times[1:]


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

    medians = {}
    library = os.path.join(os.path.dirname(args.tagger), "libtagger.so")
    if os.path.exists(library):  # what inference.py runs a frozen folder on once the runner is built
        native_times = latencies_ms(loaders.NativeFrozenTagger(frozen_dir, library, threads=1).predict, sentences,
                                    columns)
        medians["latency_ms_python_1thread"] = statistics.median(native_times)
        print(f"Python, libtagger:      mean {statistics.mean(native_times):.3f} ms, "
              f"median {medians['latency_ms_python_1thread']:.3f} ms per sentence")
    for folder in (os.path.join(args.model_dir, model_folder.ONNX_DIR), os.path.join(args.model_dir, INT8_DIR)):
        if not os.path.isdir(folder):
            continue
        onnx = OnnxTagger(folder, threads=1)
        kind = "onnx_int8" if onnx.int8 else "onnx"
        onnx_times = latencies_ms(onnx.predict, sentences, columns)
        medians[f"latency_ms_{kind}_1thread"] = statistics.median(onnx_times)
        print(f"Python, {folder}: mean {statistics.mean(onnx_times):.3f} ms, median {statistics.median(onnx_times):.3f} "
              "ms per sentence")
        if not columns:
            text_times = text_latencies_ms(onnx, sentences)
            medians[f"latency_ms_{kind}_text_1thread"] = statistics.median(text_times)
            print(f"Python, {folder}, raw text (tokenize + tag): median {statistics.median(text_times):.3f} ms per text")
    session_times = latencies_ms(frozen.predict, sentences, columns)
    medians["latency_ms_python_session_1thread"] = statistics.median(session_times)
    print(f"Python, TF session:     mean {statistics.mean(session_times):.3f} ms, "
          f"median {medians['latency_ms_python_session_1thread']:.3f} ms per sentence")
    export_dir = os.path.join(args.model_dir, model_folder.EXPORT_DIR)
    if os.path.isdir(export_dir):
        exported_times = latencies_ms(loaders.ExportedTagger(export_dir).predict, sentences, columns)
        print(f"Python, SavedModel:     mean {statistics.mean(exported_times):.3f} ms, "
              f"median {statistics.median(exported_times):.3f} ms per sentence")
    predict_times, tagging_times = tagging_overhead_ms(loaders.load_checkpoint(args.model_dir), sentences, columns)
    medians["latency_ms_predict_checkpoint_1thread"] = statistics.median(predict_times)
    medians["latency_ms_tag_sentences_checkpoint_1thread"] = statistics.median(tagging_times)
    print(f"checkpoint, predict:    median {statistics.median(predict_times):.3f} ms per sentence; tag_sentences "
          f"around it: median {statistics.median(tagging_times):.3f} ms "
          f"({statistics.median(tagging_times) / statistics.median(predict_times):.2f}x)")
    if os.path.exists(args.tagger):
        mean, median = cpp_latency_ms(args.tagger, frozen_dir, args.input)
        medians["latency_ms_cpp_1thread"] = median
        print(f"C++ runner, frozen:     mean {mean:.3f} ms, median {median:.3f} ms per sentence")
    if not columns and os.path.exists(library):  # raw text: the sentences' words joined by spaces
        native = loaders.NativeFrozenTagger(frozen_dir, library, threads=1)
        text_times = text_latencies_ms(native, sentences)
        medians["latency_ms_python_text_1thread"] = statistics.median(text_times)
        print(f"Python, libtagger, raw text (tokenize + tag): median {statistics.median(text_times):.3f} ms per text")
        if os.path.exists(args.tagger):
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
