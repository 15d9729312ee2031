"""inference.py's one call: a CoNLL file or raw text (one sentence per line) tagged with any form of
a model folder and written as CoNLL with a predicted tag column, `word tag` lines or JSON.

A file is read whole, tagged in batches sorted by length and written atomically. stdin to stdout
is a stream instead: each sentence is tagged as soon as its input has ended, with whatever input
waits behind it, so inference.py works in a pipe as the C++ runner does."""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import BinaryIO, TextIO

from ner import paths
from ner.data.conll import check_feature_columns, check_text_input, display_name, iter_conll, read_bytes, read_conll
from ner.data.render import render_conll, render_text, write_output
from ner.data.schemes import output_scheme
from ner.data.text import TextLine, iter_text, parse_text, text_sentences
from ner.model.tagging import tag_sentences  # no TensorFlow: it only calls model.predict


def tag_file(model_dir: str, input_path: str, output_path: str = "-", text: bool = False, as_json: bool = False,
             scheme: str = "auto", batch_size: int = 256) -> None:
    paths.input_file(input_path, "--input")
    paths.output_file(output_path, "--output")
    if "-" not in (input_path, output_path) and os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise ValueError(f"{output_path}: --output is the --input; writing it would replace the input")
    if input_path == output_path == "-":
        model = _load(model_dir, text)
        return tag_stream(model, sys.stdin.buffer, sys.stdout, text, as_json, "iob2" if scheme == "auto" else scheme,
                          batch_size)
    lines = parse_text(read_bytes(input_path), display_name(input_path)) if text else None
    sentences = None if text else read_conll(input_path, tagged=False)
    model = _load(model_dir, text)  # TensorFlow loads only once the input is known good
    if text:
        items = _tokenized(model, lines)
        sentences = [item.sentence for item in items]
    columns = model.config.feature_columns
    for sentence in sentences:
        check_feature_columns(sentence, columns, display_name(input_path))

    if text:
        scheme = "iob2" if scheme == "auto" else scheme
    else:
        scheme = output_scheme(sentences, scheme, columns)
    results = _tag_documents(model, sentences, scheme, batch_size, progress=input_path != "-")
    if text:
        write_output(output_path, render_text(items, results, as_json, scheme))
    else:
        write_output(output_path, render_conll(sentences, results))


def _tokenized(model, lines: list[TextLine]) -> list:
    """The lines that hold a token, as sentences: the model's tokenizer graph, in batches."""
    batch = 4096
    return [item for start in range(0, len(lines), batch)
            for item in text_sentences(lines[start:start + batch], model.tokenize) if len(item.sentence)]


def _tag_documents(model, sentences, scheme: str, batch_size: int, progress: bool = False) -> list:
    """Each sentence's (tags, confidences), None for a -DOCSTART- line (render_conll tags it O)."""
    tagged = iter(tag_sentences(model, [s for s in sentences if not s.docstart], scheme, batch_size, progress))
    return [None if s.docstart else next(tagged) for s in sentences]


def _load(model_dir: str, text: bool):
    from ner import tf_options
    tf_options.prefer_plain_cpu_kernels()
    from ner.serving.loaders import load_model
    model = load_model(model_dir)
    if text:
        check_text_input(model.config.feature_columns, model_dir)
    return model


_END = object()


def tag_stream(model, stream: BinaryIO, out: TextIO, text: bool, as_json: bool, scheme: str, batch_size: int) -> None:
    """Tags sentences as they arrive: a reader thread parses the stream, and each tagging call takes
    the oldest waiting sentence and those behind it (at most batch_size): one sentence at a time in
    an interactive pipe, whole batches when a file is piped in. The first bad line stops the stream
    after the sentences before it are written."""
    lines = (line.rstrip(b"\n") for line in stream)
    items = iter_text(lines, "<stdin>") if text else iter_conll(lines, "<stdin>")
    waiting: queue.Queue = queue.Queue(maxsize=4 * batch_size)

    def read():
        try:
            for item in items:
                waiting.put(item)
        except Exception as error:  # the main thread reports it
            waiting.put(error)
        waiting.put(_END)

    threading.Thread(target=read, name="stdin", daemon=True).start()
    done = False
    while not done:
        batch = [waiting.get()]
        while len(batch) < batch_size and not waiting.empty():
            batch.append(waiting.get())
        if batch[-1] is _END:
            batch.pop()
            done = True
        failure = next((item for item in batch if isinstance(item, Exception)), None)
        if failure is not None:
            batch = batch[:batch.index(failure)]
        if text:
            batch = _tokenized(model, batch)
        sentences = [item.sentence if text else item for item in batch]
        for sentence in sentences:
            check_feature_columns(sentence, model.config.feature_columns, "<stdin>")
        results = _tag_documents(model, sentences, scheme, batch_size)
        out.write(render_text(batch, results, as_json, scheme) if text else render_conll(sentences, results))
        out.flush()
        if failure is not None:
            raise failure
