"""inference.py's one call: a CoNLL file or raw text (one sentence per line) tagged with any form of
a model folder and written as CoNLL with a predicted tag column, `word tag` lines or JSON.

A file is read whole, tagged in batches sorted by length and written atomically. stdin to stdout
is a stream instead: each sentence is tagged as soon as its input has ended, with whatever input
waits behind it, so inference.py works in a pipe as the C++ runner does; a model that reads document
context (bert_context=document) tags a sentence once its document has ended instead.

Documents: -DOCSTART- lines start them in CoNLL, blank lines end them in raw text (a text without
one is a single document)."""
from __future__ import annotations

import os
import queue
import sys
import threading
from typing import BinaryIO, TextIO

from ner import paths
from ner.data.conll import (
    Sentence,
    check_feature_columns,
    check_text_input,
    display_name,
    iter_conll,
    read_bytes,
    read_conll,
)
from ner.data.render import render_conll, render_text, write_output
from ner.data.schemes import output_scheme
from ner.data.text import DocumentEnd, TextLine, iter_text, parse_text, text_sentences
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
    an interactive pipe, whole batches when a file is piped in.

    A model that reads document context waits for each sentence's document to end (a -DOCSTART-
    line in CoNLL, a blank line in text, or the end of the input) and tags it as a whole, so the
    output is the file mode's; -DOCSTART- lines are written as soon as they arrive.

    The first bad line stops the stream after the sentences before it are written, as the file mode
    would have written them had the input ended there: for a document model, the documents before
    it and the sentences of its own document read so far, tagged beside one another (a user sees
    every sentence that came before the bad line, as with other models, and the words after it
    cannot be known)."""
    lines = (line.rstrip(b"\n") for line in stream)
    documents = model.config.context_words > 0
    items = iter_text(lines, "<stdin>", document_ends=documents) if text else iter_conll(lines, "<stdin>")
    columns = model.config.feature_columns
    waiting: queue.Queue = queue.Queue(maxsize=4 * batch_size)

    def read():
        try:
            for item in items:
                if isinstance(item, Sentence):
                    check_feature_columns(item, columns, "<stdin>")
                waiting.put(item)
        except Exception as error:  # the main thread reports it
            waiting.put(error)
        waiting.put(_END)

    def write(batch: list) -> None:
        if text:
            batch = _tokenized(model, batch)
        sentences = [item.sentence if text else item for item in batch]
        results = _tag_documents(model, sentences, scheme, batch_size)
        out.write(render_text(batch, results, as_json, scheme) if text else render_conll(sentences, results))
        out.flush()

    threading.Thread(target=read, name="stdin", daemon=True).start()
    ready: list = []    # complete: tagged at the next call
    current: list = []  # a document model's current document, read so far
    while True:
        item = waiting.get()
        last = item is _END or isinstance(item, Exception)
        if last or isinstance(item, DocumentEnd) or (current and item.document != current[-1].document):
            ready += current
            current = []
        if not last and not isinstance(item, DocumentEnd):
            docstart = isinstance(item, Sentence) and item.docstart  # nothing to tag: written at once
            (current if documents and not docstart else ready).append(item)
        if ready and (last or len(ready) >= batch_size or waiting.empty()):
            write(ready)
            ready = []
        if last:
            if item is not _END:
                raise item
            return
