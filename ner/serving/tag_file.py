"""inference.py's one call: a CoNLL file or raw text (one sentence per line) tagged with any form of
a model folder and written as CoNLL with a predicted tag column, `word tag` lines or JSON.

A file is read twice, line by line, never more than a bounded part of it at once: first to check
every line (before TensorFlow loads) and find the gold column's scheme, then to tag it in windows
of at most WINDOW_SENTENCES sentences or WINDOW_CHARACTERS characters (ner/data/limits.py), each tagged in
batches sorted by length and written before the next is read; the output is written under a
temporary name and renamed at the end. Input that cannot be read twice (stdin, a pipe, a device)
is copied to a temporary file as the first reading goes. stdin to stdout is a stream instead:
each sentence is tagged as soon as its input has ended, with whatever input waits behind it, so
inference.py works in a pipe as the C++ runner does; a model that reads document context
(bert_context=document) tags a sentence once its document has ended instead.

Documents: -DOCSTART- lines start them in CoNLL, blank lines end them in raw text (a text without
one is a single document)."""
from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO, TextIO

from ner import model_folder, paths
from ner.config import Config
from ner.data.conll import (
    InputError,
    Sentence,
    check_feature_columns,
    check_text_input,
    display_name,
    iter_conll,
    open_input,
    read_lines,
)
from ner.data.documents import iter_contexts
from ner.data.limits import Limits, windows
from ner.data.render import open_output, render_conll, render_text
from ner.data.schemes import detect_scheme
from ner.data.text import DocumentEnd, TextSentence, check_tokens, iter_text, text_sentences
from ner.model.tagging import tag_sentences  # no TensorFlow: it only calls model.predict

JSON_NEEDS_TEXT = "--json writes tagged raw text: use it with --format text"
# detect_scheme over a whole file, sentence by sentence: any E-/S- makes it IOBES, else any chunk
# that starts with I- IOB1.
_SCHEME_PRECEDENCE = ("iob2", "iob1", "iobes")


def tag_file(model_dir: str, input_path: str, output_path: str = "-", text: bool = False, as_json: bool = False,
             scheme: str = "auto", batch_size: int = 256, limits: Limits = Limits()) -> None:
    if as_json and not text:
        raise ValueError(JSON_NEEDS_TEXT)
    paths.input_file(input_path, "--input")
    model_folder.check_output_file(output_path, "--output")
    if "-" not in (input_path, output_path) and os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise ValueError(f"{output_path}: --output is the --input; writing it would replace the input")
    config = _config(model_dir)
    if text:
        check_text_input(config.feature_columns, model_dir)
    if input_path == output_path == "-":
        return tag_stream(_load(model_dir), sys.stdin.buffer, sys.stdout, text, as_json,
                          "iob2" if scheme == "auto" else scheme, batch_size, limits)
    reader = _Reader(display_name(input_path), text, config.feature_columns, limits)
    with _read_twice(input_path, lambda stream: reader.gold_scheme(stream, scheme)) as (stream, scheme):
        model = _load(model_dir)  # TensorFlow loads only once the input is known good
        with open_output(output_path) as out:
            for window in windows(reader.contexts(model, stream), lambda pair: _size(pair[0])):
                items = [item for item, _ in window]
                sentences = [item.sentence if text else item for item in items]
                results = _tag_documents(model, sentences, scheme, batch_size, [context for _, context in window],
                                         progress=input_path != "-")
                out.write(render_text(items, results, as_json, scheme) if text else render_conll(sentences, results))


class _Reader:
    """One input's items, read with the limits: CoNLL Sentences (-DOCSTART- lines among them), or
    text lines; strict: the first bad line raises its InputError."""

    def __init__(self, name: str, text: bool, feature_columns, limits: Limits):
        self.name, self.text, self.feature_columns, self.limits = name, text, feature_columns, limits
        self.model_columns = max(feature_columns, default=0) + 1  # the word and the feature columns

    def items(self, stream: BinaryIO, document_ends: bool = False) -> Iterator:
        lines = read_lines(stream, self.name, self.limits.line_bytes)
        if self.text:
            for item in iter_text(lines, self.name, document_ends):
                if isinstance(item, InputError):
                    raise item
                yield item
            return
        for sentence in iter_conll(lines, self.name, limits=self.limits, model_columns=self.model_columns,
                                   strict=True):
            check_feature_columns(sentence, self.feature_columns, self.name)
            yield sentence

    def tokenized(self, model, lines: list) -> list[TextSentence]:
        """The lines that hold a token, as sentences: the model's tokenizer graph, in batches."""
        batch = 4096
        items = [item for start in range(0, len(lines), batch)
                 for item in text_sentences(lines[start:start + batch], model.tokenize) if len(item.sentence)]
        for item in items:
            check_tokens(item, self.name, self.limits)
        return items

    def gold_scheme(self, stream: BinaryIO, requested: str) -> str:
        """Reads every item (so that a bad line stops the command before TensorFlow loads) and
        returns the scheme to write: as requested, else that of the input's gold column (a last
        column after those the model reads; every line has one, and a tag in it, or none has),
        else IOB2 (ner.data.schemes.output_scheme, read as the input goes)."""
        found = "iob2"
        for item in self.items(stream):
            if not self.text and not item.docstart and len(item.columns[0]) > self.model_columns:
                found = max(found, detect_scheme([item.tags]), key=_SCHEME_PRECEDENCE.index)
        return found if requested == "auto" else requested

    def contexts(self, model, stream: BinaryIO) -> Iterator[tuple]:
        """(item, its document context) for each item to write: CoNLL Sentences, or text lines
        that hold a token as TextSentences, tokenized a window at a time."""
        items: Iterable = self.items(stream)
        if self.text:
            items = itertools.chain.from_iterable(self.tokenized(model, window) for window in windows(items, _size))
        return iter_contexts(items, model.config.context_words,
                             (lambda item: item.sentence) if self.text else (lambda item: item))


def _size(item) -> int:
    """What a window counts of an item: its characters (a text line's, or a CoNLL sentence's lines')."""
    return len(item.text) if hasattr(item, "text") else sum(map(len, item.lines))


@contextlib.contextmanager
def _read_twice(input_path: str, first: Callable[[BinaryIO], str]) -> Iterator[tuple[BinaryIO, str]]:
    """Calls first(stream) on the input, then yields the input again from its start, with what
    first returned: a regular file is read again; other input is copied to a temporary file as
    first reads it."""
    if input_path != "-" and os.path.isfile(input_path):
        with open(input_path, "rb") as file:
            result = first(file)
            file.seek(0)
            yield file, result
        return
    with open_input(input_path) as source, tempfile.TemporaryFile() as copy:
        result = first(_Copying(source, copy))
        copy.seek(0)
        yield copy, result


class _Copying:
    """A stream that writes what is read from it to `copy`."""

    def __init__(self, source: BinaryIO, copy: BinaryIO):
        self.source, self.copy = source, copy

    def read1(self, size: int) -> bytes:
        data = self.source.read1(size)
        self.copy.write(data)
        return data


def _config(model_dir: str) -> Config:
    """The folder's config (every form of a model folder has its config.json), read before
    TensorFlow loads: the columns the model reads decide how the input is checked."""
    if not os.path.isdir(model_dir):
        raise FileNotFoundError(f"{model_dir}: model folder not found")
    return Config.load(os.path.join(model_dir, model_folder.CONFIG))


def _tag_documents(model, sentences, scheme: str, batch_size: int, contexts=None, progress: bool = False) -> list:
    """Each sentence's (tags, confidences), None for a -DOCSTART- line (render_conll tags it O)."""
    rows = [i for i, s in enumerate(sentences) if not s.docstart]
    tagged = iter(tag_sentences(model, [sentences[i] for i in rows], scheme, batch_size, progress,
                                None if contexts is None else [contexts[i] for i in rows]))
    return [None if s.docstart else next(tagged) for s in sentences]


def _load(model_dir: str):
    from ner import tf_options
    tf_options.prefer_plain_cpu_kernels()
    from ner.serving.loaders import load_model
    return load_model(model_dir)


_END = object()


def tag_stream(model, stream: BinaryIO, out: TextIO, text: bool, as_json: bool, scheme: str, batch_size: int,
               limits: Limits = Limits()) -> None:
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
    reader = _Reader("<stdin>", text, model.config.feature_columns, limits)
    documents = model.config.context_words > 0
    waiting: queue.Queue = queue.Queue(maxsize=4 * batch_size)

    def read():
        try:
            for item in reader.items(stream, document_ends=documents):
                waiting.put(item)
        except Exception as error:  # the main thread reports it
            waiting.put(error)
        waiting.put(_END)

    def write(batch: list) -> None:
        if text:
            batch = reader.tokenized(model, batch)
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
