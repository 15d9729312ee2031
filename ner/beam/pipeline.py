"""The Beam pipeline of beam_tag.py: shards read on the workers, cut into inference.py's batches,
tagged by a ModelHandler that loads the model once per worker process, and written back shard by
shard. Each sentence's document context (for models with bert_context=document) is taken when its
shard is read, from the shard's sentences in file order, and travels with it into its batch."""
from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Iterable, Iterator
from typing import BinaryIO, NamedTuple


class _QuietBeamWarnings(logging.Filter):
    """Warnings Beam logs here on import (no Google Cloud client) and on every bundle
    (RunInference cannot read memory usage): nothing a user of this script can act on."""
    NOISE = ("apitools not found", "Resource module is not available")

    def filter(self, record):
        return not any(noise in record.getMessage() for noise in self.NOISE)


logging.getLogger().addFilter(_QuietBeamWarnings())

import apache_beam as beam  # noqa: E402  (after the filter: Beam warns on import)
from apache_beam.io.filesystems import FileSystems  # noqa: E402  (after the filter: Beam warns on import)
from apache_beam.ml.inference.base import (  # noqa: E402  (after the filter: Beam warns on import)
    KeyedModelHandler,
    ModelHandler,
    PredictionResult,
    RunInference,
)
from apache_beam.options.pipeline_options import (  # noqa: E402  (after the filter: Beam warns on import)
    PipelineOptions,
    StandardOptions,
)

from ner import model_folder, paths  # noqa: E402  (after the filter: Beam warns on import)
from ner.config import Config  # noqa: E402  (after the filter: Beam warns on import)
from ner.data.conll import (  # noqa: E402  (after the filter: Beam warns on import)
    InputError,
    Sentence,
    check_feature_columns,
    check_text_input,
    iter_conll,
    read_lines,
)
from ner.data.documents import NO_CONTEXT, Context, iter_contexts  # noqa: E402  (after the filter: Beam warns on import)
from ner.data.limits import Limits, windows  # noqa: E402  (after the filter: Beam warns on import)
from ner.data.render import render_conll, render_text  # noqa: E402  (after the filter: Beam warns on import)
from ner.data.schemes import convert_tags, output_scheme  # noqa: E402  (after the filter: Beam warns on import)
from ner.data.text import (  # noqa: E402  (after the filter: Beam warns on import)
    TextLine,
    TextSentence,
    check_tokens,
    iter_text,
    text_sentences,
)
from ner.serving.tag_file import JSON_NEEDS_TEXT  # noqa: E402  (after the filter: Beam warns on import)
from ner.wording import counted  # noqa: E402  (after the filter: Beam warns on import)

MALFORMED = "_malformed.txt"
METRICS = "beam_tag"


class Record(NamedTuple):
    """One sentence of a shard: its position in the shard, the sentence, for text input the line
    it was read from with its tokens' offsets, and its document context (ner.data.documents)."""
    index: int
    sentence: Sentence
    text: TextSentence | None = None
    context: Context = NO_CONTEXT


def _with_contexts(items: Iterable, context_words: int) -> Iterator:
    """The items, each Record with its context: each document of the shard is its good sentences
    in file order (a malformed one is left out, as if the shard did not hold it). InputErrors come
    out as they are read, Records once their context is known."""
    errors: list[InputError] = []

    def records():
        for item in items:
            if isinstance(item, InputError):
                errors.append(item)
            else:
                yield item

    for record, context in iter_contexts(records(), context_words, lambda record: record.sentence):
        yield from errors
        errors.clear()
        yield record._replace(context=context)
    yield from errors


def conll_records(stream: BinaryIO, name: str, feature_columns=(), context_words: int = 0,
                  limits: Limits = Limits()) -> Iterator:
    """The sentences of a CoNLL shard as Records, read line by line with the limits and leniently:
    a sentence with a bad line (too long, or with no tag in a column after those the model reads),
    too many tokens or without the model's feature columns comes out as its InputError in place
    of the Record. With context_words (the model's config.context_words), each Record carries its
    document context."""
    def items():
        sentences = iter_conll(read_lines(stream, name, limits.line_bytes), name, limits=limits,
                               model_columns=max(feature_columns, default=0) + 1)
        for index, item in enumerate(sentences):
            if isinstance(item, Sentence):
                try:
                    check_feature_columns(item, feature_columns, name)
                    item = Record(index, item)
                except InputError as e:
                    item = e
            yield item
    return _with_contexts(items(), context_words)


def text_records(stream: BinaryIO, name: str, context_words: int = 0, limits: Limits = Limits()) -> Iterator:
    """The lines of a text shard that hold a token as Records, a bad line (not UTF-8, too long,
    CoNLL, or of too many tokens) as its InputError; blank lines end documents. The lines are
    tokenized here, a window at a time, as the tokenizer graph that the model's artifacts hold
    tokenizes them (ner/data/tokenizer.py; ner/serving/text_tokens.py gives its answer without
    TensorFlow, which an ONNX folder's workers never load), so that the shard is cut into
    inference.py's batches. With context_words, each Record carries its document context."""
    from ner.serving.text_tokens import tokenize_texts

    def items():
        lines = enumerate(iter_text(read_lines(stream, name, limits.line_bytes), name))
        for window in windows(lines, lambda pair: len(pair[1].text) if isinstance(pair[1], TextLine) else 0):
            tokenized = iter(text_sentences([item for _, item in window if isinstance(item, TextLine)],
                                            tokenize_texts))
            for index, item in window:
                if isinstance(item, InputError):
                    yield item
                    continue
                line = next(tokenized)
                if len(line.sentence):
                    try:
                        check_tokens(line, name, limits)
                        yield Record(index, line.sentence, line)
                    except InputError as e:
                        yield e
    return _with_contexts(items(), context_words)


class ReadShard(beam.DoFn):
    """path -> the shard's sentences in the batches inference.py would form for it: on the
    'batches' output, (path, tuple of Records) for each batch of `batch_size` sentences of each
    window of the shard (ner/data/limits.py), sorted by length; on the main output, (path,
    Record) for each -DOCSTART- line, passed through untagged, and (path, None) once, so that a
    shard with no sentence still gets its output; on the 'malformed' output, `path:line: what was
    expected` for each bad record. The shard is read line by line, with the limits, never more
    than a window of it at once. Records carry their document context (context_words: the
    model's config.context_words)."""

    def __init__(self, text: bool, feature_columns, batch_size: int, context_words: int = 0,
                 limits: Limits = Limits()):
        self.text = text
        self.feature_columns = tuple(feature_columns)
        self.batch_size = batch_size
        self.context_words = context_words
        self.limits = limits
        self.malformed = beam.metrics.Metrics.counter(METRICS, "malformed_records")
        self.sentences = beam.metrics.Metrics.counter(METRICS, "sentences")

    def process(self, path):
        yield path, None
        with FileSystems.open(path) as f:
            records = (text_records(f, path, self.context_words, self.limits) if self.text
                       else conll_records(f, path, self.feature_columns, self.context_words, self.limits))
            malformed: list[str] = []
            for window in windows(self._good(records, malformed), lambda record: sum(map(len, record.sentence.lines))):
                to_tag = []
                for record in window:
                    if record.sentence.docstart:
                        yield path, record
                    else:
                        to_tag.append(record)
                self.sentences.inc(len(to_tag))
                # tag_sentences's order (a stable sort by length), cut into its batches.
                to_tag.sort(key=lambda record: len(record.sentence))
                for start in range(0, len(to_tag), self.batch_size):
                    yield beam.pvalue.TaggedOutput("batches", (path, tuple(to_tag[start:start + self.batch_size])))
            for line in malformed:
                yield beam.pvalue.TaggedOutput("malformed", line)

    def _good(self, records: Iterable, malformed: list[str]) -> Iterator[Record]:
        """The Records; each InputError is counted and kept, as its line, in `malformed`."""
        for item in records:
            if isinstance(item, InputError):
                self.malformed.inc()
                malformed.append(str(item))
            else:
                yield item


class TaggerModelHandler(ModelHandler):
    """A Beam ModelHandler: load_model loads the folder once per worker process (RunInference
    shares it between the threads of the process); run_inference tags batches of Records with
    tag_sentences, the function inference.py uses, each sentence with the context it was read with. An example is a whole
    batch of sentences (ReadShard forms them as inference.py does), so each call gets one.
    Tags come out in IOB2; the writer converts them to each shard's scheme."""

    def __init__(self, model_dir: str, batch_size: int = 256):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.model_dir = model_dir
        self.batch_size = batch_size

    def load_model(self):
        from ner.serving.loaders import load_model
        return load_model(self.model_dir)

    def run_inference(self, batch, model, inference_args=None):
        from ner.model.tagging import tag_sentences
        predictions = []
        for records in batch:
            results = tag_sentences(model, [record.sentence for record in records], "iob2", self.batch_size,
                                    contexts=[record.context for record in records])
            predictions.append(PredictionResult(records, results))
        return predictions

    def get_num_bytes(self, batch) -> int:
        return sum(len(line) for records in batch for record in records for line in record.sentence.lines)

    def get_metrics_namespace(self) -> str:
        return METRICS


class WriteShard(beam.DoFn):
    """(path, [(Record, result) ... and None]) -> OUTPUT/<name of path>, rendered as inference.py
    renders the whole shard; written under a temporary name and renamed."""

    def __init__(self, output: str, text: bool, as_json: bool, scheme: str, feature_columns):
        self.output, self.text, self.as_json, self.scheme = output, text, as_json, scheme
        self.feature_columns = tuple(feature_columns)

    def process(self, element):
        path, items = element
        tagged = sorted((item for item in items if item is not None), key=lambda item: item[0].index)
        records = [record for record, _ in tagged]
        sentences = [record.sentence for record in records]
        if self.text:
            scheme = "iob2" if self.scheme == "auto" else self.scheme
        else:
            scheme = output_scheme(sentences, self.scheme, self.feature_columns)
        results = [None if result is None else (convert_tags(result[0], "iob2", scheme), result[1])
                   for _, result in tagged]
        if self.text:
            rendered = render_text([record.text for record in records], results, self.as_json, scheme)
        else:
            rendered = render_conll(sentences, results)
        target = FileSystems.join(self.output, os.path.basename(path))
        temporary = FileSystems.join(self.output, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        with FileSystems.create(temporary) as f:
            f.write(rendered.encode("utf-8"))
        if FileSystems.exists(target):
            FileSystems.delete([target])
        FileSystems.rename([temporary], [target])
        yield target


def write_malformed(lines: list, output: str):
    if lines:
        with FileSystems.create(FileSystems.join(output, MALFORMED)) as f:
            f.write(("\n".join(sorted(lines)) + "\n").encode("utf-8"))


def build(pipeline, shards: list[str], model_dir: str, output: str, text: bool = False, as_json: bool = False,
          scheme: str = "auto", batch_size: int = 256, feature_columns=(), context_words: int = 0,
          limits: Limits = Limits()):
    """Adds the tagging of `shards` into `output` to `pipeline` (feature_columns and context_words:
    the model's config's)."""
    read = (pipeline
            | "Shards" >> beam.Create(shards)
            | "Spread shards" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadShard(text, feature_columns, batch_size, context_words, limits)).with_outputs(
                "batches", "malformed", main="untagged"))
    tagged = (read.batches
              | "Spread batches" >> beam.Reshuffle()
              | "Tag" >> RunInference(KeyedModelHandler(TaggerModelHandler(model_dir, batch_size)))
              | "Results" >> beam.FlatMapTuple(lambda path, prediction: [
                  (path, (record, result)) for record, result in zip(prediction.example, prediction.inference)]))
    untagged = (read.untagged
                | "As results" >> beam.MapTuple(lambda path, record: (path, None if record is None else (record, None))))
    _ = ((tagged, untagged)
         | "Together" >> beam.Flatten()
         | "By shard" >> beam.GroupByKey()
         | "Write" >> beam.ParDo(WriteShard(output, text, as_json, scheme, feature_columns)))
    _ = (read.malformed
         | "Malformed" >> beam.combiners.ToList()
         | "Write malformed" >> beam.Map(write_malformed, output))


def match_shards(pattern: str) -> list[str]:
    """Every file that `pattern` (a glob, on any Beam filesystem) matches, sorted; the names must
    be distinct, since each names its output file."""
    result = FileSystems.match([pattern])[0]
    paths = sorted(metadata.path for metadata in result.metadata_list)
    if not paths:
        raise ValueError(f"{pattern}: no input file matches")
    names = {}
    for path in paths:
        name = os.path.basename(path)
        if name == MALFORMED or name in names:
            raise ValueError(f"{path}: {'reserved output name' if name == MALFORMED else 'same name as ' + names[name]}"
                             "; each shard's name names its output file")
        names[name] = path
    return paths


def run(model_dir: str, pattern: str, output: str, text: bool = False, as_json: bool = False, scheme: str = "auto",
        batch_size: int = 256, beam_args: list[str] = (), limits: Limits = Limits()) -> int:
    """beam_tag.py's one call: tags every shard; returns 1 when malformed records were left out, else 0."""
    if as_json and not text:
        raise ValueError(JSON_NEEDS_TEXT)
    shards = match_shards(pattern)
    paths.output_folder(output, "--output")  # a local path that is a file; other file systems say so later
    for shard in shards:  # on a local file system: OUTPUT/<shard name> must not be the shard itself
        if os.path.exists(shard) and os.path.isdir(output) and os.path.samefile(os.path.dirname(shard), output):
            raise ValueError(f"{output}: --output is the folder of the input shard {shard}; writing there would "
                             "replace the input")
    if os.path.isdir(output):  # a local folder: no file of it that a command wrote (a model's, an export's)
        for name in [MALFORMED] + [os.path.basename(shard) for shard in shards]:
            model_folder.check_output_file(os.path.join(output, name), "--output")
    config = Config.load(os.path.join(model_dir, model_folder.CONFIG))
    columns = list(config.feature_columns)
    if text:
        check_text_input(columns, model_dir)
    options = PipelineOptions(list(beam_args))
    runner = None
    if options.view_as(StandardOptions).runner is None:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        runner = FnApiRunner()
    if not FileSystems.exists(output):
        FileSystems.mkdirs(output)
    stale = FileSystems.join(output, MALFORMED)
    if FileSystems.exists(stale):
        FileSystems.delete([stale])
    pipeline = beam.Pipeline(runner=runner, options=options)
    build(pipeline, shards, model_dir, output, text=text, as_json=as_json, scheme=scheme, batch_size=batch_size,
          feature_columns=columns, context_words=config.context_words, limits=limits)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS))["counters"]}
    malformed, sentences = counters.get("malformed_records", 0), counters.get("sentences", 0)
    print(f"{counted(len(shards), 'shard')}, {counted(sentences, 'sentence')} tagged into {output}", file=sys.stderr)
    if malformed:
        print(f"{counted(malformed, 'malformed record')} left out; listed in {stale}", file=sys.stderr)
        return 1
    return 0
