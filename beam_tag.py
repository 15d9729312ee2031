"""Tags a sharded corpus with Apache Beam: the same output as inference.py, shard by shard,
on the local runner or any Beam runner (Dataflow, Flink, Spark) chosen by pipeline options.

    python beam_tag.py --model_dir runs/NAME --input 'corpus/*.txt' --output out/pred \\
        [--format conll|text] [--json] [--scheme auto|iob1|iob2|iobes] [--batch_size 256] \\
        [Beam pipeline options, e.g. --direct_num_workers 2 --direct_running_mode multi_processing,
         or --runner DataflowRunner --project ... --region ... --temp_location gs://...]

Each file that --input matches is a shard; OUTPUT/<its name> receives exactly what
`inference.py --input SHARD` writes (tags in the shard's own scheme with --scheme auto).
Shards are read on the workers and cut into the batches inference.py would tag (sentences
sorted by length), the batches are spread over the workers and tagged by a Beam ModelHandler
that loads the model (a model folder, its export/ or frozen/) once per worker process, and
each shard's tagged sentences are put back in order and written as one file. A malformed sentence (or text line) does not stop the run: it is left out of its
shard's output and listed as `shard:line: what was expected` in OUTPUT/_malformed.txt; the
command then exits with status 1. Without --runner the pipeline runs in this process on
Beam's FnApiRunner (the local runner, without the Prism download that DirectRunner tries).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import uuid
from typing import NamedTuple


class _QuietBeamWarnings(logging.Filter):
    """Warnings Beam logs here on import (no Google Cloud client) and on every bundle
    (RunInference cannot read memory usage): nothing a user of this script can act on."""
    NOISE = ("apitools not found", "Resource module is not available")

    def filter(self, record):
        return not any(noise in record.getMessage() for noise in self.NOISE)


logging.getLogger().addFilter(_QuietBeamWarnings())

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

import input as conll
import inference

MALFORMED = "_malformed.txt"
METRICS = "beam_tag"


class Record(NamedTuple):
    """One sentence of a shard: its position in the shard, the sentence, and for text input the
    token offsets and the line's text (inference.read_text's items)."""
    index: int
    sentence: conll.Sentence
    tokens: tuple = ()
    text: str = ""


def conll_records(data: bytes, name: str, feature_columns=()):
    """The sentences of a CoNLL shard as parse_conll(tagged=False) reads them, but a sentence
    with a bad line does not stop the reading: it comes out as an InputError (its first bad
    line) in place of the Record. The model's feature columns must exist in every sentence, as
    inference.py checks."""
    if data.startswith(conll._UTF8_BOM):
        data = data[len(conll._UTF8_BOM):]
    lines, columns, start, error = [], [], 0, None
    reference = None  # (column count, line number) of the file's first token line
    index = 0

    def flush():
        nonlocal lines, columns, error, index
        item = None
        if error is not None:
            item = error
        elif lines:
            item = Record(index, conll.Sentence(tuple(lines), tuple(columns), start))
            if feature_columns and len(columns[0]) <= max(feature_columns):
                item = conll.InputError(name, start, f"the model reads column {max(feature_columns) + 1} (features "
                                        f"{list(feature_columns)}); found {len(columns[0])} columns")
        if item is not None:
            index += 1
        lines, columns, error = [], [], None
        return item

    for number, raw in enumerate(data.split(b"\n"), start=1):
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        try:
            line = conll._decode_line(raw, name, number)
            fields = conll._split_columns(line)
        except conll.InputError as e:
            if error is None:
                error = e
            if not lines:
                start = number
            lines.append("")
            continue
        if not fields or fields[0] == conll.DOCSTART:
            item = flush()
            if item is not None:
                yield item
            if fields:
                yield Record(index, conll.Sentence((line,), (fields,), number, docstart=True))
                index += 1
            continue
        if not lines:
            start = number
        lines.append(line)
        columns.append(fields)
        if error is not None:
            continue
        try:
            conll._check_fields(fields, name, number)
            if reference is None:
                reference = (len(fields), number)
            elif len(fields) != reference[0]:
                raise conll.InputError(name, number, f"expected {reference[0]} columns like line {reference[1]}, "
                                       f"found {len(fields)}")
        except conll.InputError as e:
            error = e
    item = flush()
    if item is not None:
        yield item


def text_records(data: bytes, name: str):
    """inference.read_text's items as Records, a line that is not UTF-8 as an InputError."""
    index = 0
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            yield conll.InputError(name, number, f"expected UTF-8 text, found byte 0x{raw[e.start]:02x} "
                                   f"at offset {e.start}")
            continue
        tokens = conll.tokenize(text)
        if tokens:
            words = tuple(t for t, _, _ in tokens)
            yield Record(index, conll.Sentence(lines=words, columns=tuple((w,) for w in words), first_line=number),
                         tuple(tokens), text)
            index += 1


class ReadShard(beam.DoFn):
    """path -> the shard's sentences in the batches inference.py would form for it: on the
    'batches' output, (path, tuple of Records) for each batch of `batch_size` sentences of the
    length-sorted shard; on the main output, (path, Record) for each -DOCSTART- line, passed
    through untagged, and (path, None) once, so that a shard with no sentence still gets its
    output; on the 'malformed' output, `path:line: what was expected` for each bad record."""

    def __init__(self, text: bool, feature_columns, batch_size: int):
        self.text = text
        self.feature_columns = tuple(feature_columns)
        self.batch_size = batch_size
        self.malformed = beam.metrics.Metrics.counter(METRICS, "malformed_records")
        self.sentences = beam.metrics.Metrics.counter(METRICS, "sentences")

    def process(self, path):
        with FileSystems.open(path) as f:
            data = f.read()
        yield path, None
        records = text_records(data, path) if self.text else conll_records(data, path, self.feature_columns)
        to_tag = []
        for item in records:
            if isinstance(item, conll.InputError):
                self.malformed.inc()
                yield beam.pvalue.TaggedOutput("malformed", str(item))
            elif item.sentence.docstart:
                yield path, item
            else:
                to_tag.append(item)
        self.sentences.inc(len(to_tag))
        # tagging.tag_sentences's order (a stable sort by length), cut into its batches.
        to_tag.sort(key=lambda record: len(record.sentence))
        for start in range(0, len(to_tag), self.batch_size):
            yield beam.pvalue.TaggedOutput("batches", (path, tuple(to_tag[start:start + self.batch_size])))


class TaggerModelHandler(ModelHandler):
    """A Beam ModelHandler over tagging.py: load_model loads the folder once per worker process
    (RunInference shares it between the threads of the process); run_inference tags batches of
    Records with tagging.tag_sentences, the function inference.py uses. An example is a whole
    batch of sentences (ReadShard forms them as inference.py does), so each call gets one.
    Tags come out in IOB2; the writer converts them to each shard's scheme."""

    def __init__(self, model_dir: str, batch_size: int = 256):
        super().__init__(min_batch_size=1, max_batch_size=1)
        self.model_dir = model_dir
        self.batch_size = batch_size

    def load_model(self):
        import tagging
        return tagging.load_model(self.model_dir)

    def run_inference(self, batch, model, inference_args=None):
        import tagging
        predictions = []
        for records in batch:
            results = tagging.tag_sentences(model, [record.sentence for record in records], "iob2",
                                            self.batch_size)
            predictions.append(PredictionResult(records, results))
        return predictions

    def get_num_bytes(self, batch) -> int:
        return sum(len(line) for records in batch for record in records for line in record.sentence.lines)

    def get_metrics_namespace(self) -> str:
        return METRICS


class WriteShard(beam.DoFn):
    """(path, [(Record, result) ... and None]) -> OUTPUT/<name of path>, rendered as inference.py
    renders the whole shard; written under a temporary name and renamed."""

    def __init__(self, output: str, text: bool, as_json: bool, scheme: str):
        self.output, self.text, self.as_json, self.scheme = output, text, as_json, scheme

    def process(self, element):
        path, items = element
        tagged = sorted((item for item in items if item is not None), key=lambda item: item[0].index)
        records = [record for record, _ in tagged]
        sentences = [record.sentence for record in records]
        if self.text:
            scheme = "iob2" if self.scheme == "auto" else self.scheme
        else:
            scheme = inference.output_scheme(sentences, self.scheme)
        results = [None if result is None else (conll.convert_tags(result[0], "iob2", scheme), result[1])
                   for _, result in tagged]
        if self.text:
            items = [(record.sentence, list(record.tokens), record.text) for record in records]
            rendered = inference.render_text(items, results, self.as_json, scheme)
        else:
            rendered = inference.render_conll(sentences, results)
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
          scheme: str = "auto", batch_size: int = 256, feature_columns=()):
    """Adds the tagging of `shards` into `output` to `pipeline`."""
    read = (pipeline
            | "Shards" >> beam.Create(shards)
            | "Spread shards" >> beam.Reshuffle()
            | "Read" >> beam.ParDo(ReadShard(text, feature_columns, batch_size)).with_outputs(
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
         | "Write" >> beam.ParDo(WriteShard(output, text, as_json, scheme)))
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py, or its export/ "
                        "or frozen/ folder; every worker reads it at this path")
    parser.add_argument("--input", required=True, help="file pattern of the input shards (e.g. 'corpus/*.txt')")
    parser.add_argument("--output", required=True, help="output folder: OUTPUT/<shard name> for each shard, "
                        f"OUTPUT/{MALFORMED} for malformed records")
    parser.add_argument("--format", choices=("conll", "text"), default="conll", help="input format (default conll)")
    parser.add_argument("--json", action="store_true", help="text format: one JSON object per sentence")
    parser.add_argument("--scheme", choices=("auto", "iob1", "iob2", "iobes"), default="auto",
                        help="tag scheme to write; auto: each shard's gold column's scheme, else iob2")
    parser.add_argument("--batch_size", type=int, default=256, help="sentences per batch (default 256)")
    return parser.parse_known_args(argv)


def main(argv=None) -> int:
    args, beam_args = parse_args(argv)
    from config import Config
    try:
        shards = match_shards(args.input)
        config = Config.load(os.path.join(args.model_dir, "config.json"))
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(str(e)) from None
    columns = list(config.feature_columns)
    if columns and args.format == "text":
        raise SystemExit(f"{args.model_dir} was trained with CoNLL feature columns {columns}; tag CoNLL input instead")
    options = PipelineOptions(beam_args)
    runner = None
    if options.view_as(StandardOptions).runner is None:
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner
        runner = FnApiRunner()
    if not FileSystems.exists(args.output):
        FileSystems.mkdirs(args.output)
    stale = FileSystems.join(args.output, MALFORMED)
    if FileSystems.exists(stale):
        FileSystems.delete([stale])
    pipeline = beam.Pipeline(runner=runner, options=options)
    build(pipeline, shards, args.model_dir, args.output, text=args.format == "text", as_json=args.json,
          scheme=args.scheme, batch_size=args.batch_size, feature_columns=columns)
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed
                for c in result.metrics().query(beam.metrics.MetricsFilter().with_namespace(METRICS))["counters"]}
    malformed, sentences = counters.get("malformed_records", 0), counters.get("sentences", 0)
    print(f"{len(shards)} shards, {sentences} sentences tagged into {args.output}", file=sys.stderr)
    if malformed:
        print(f"{malformed} malformed records left out; listed in {stale}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    # Run as beam_tag (not __main__), so that the pipeline's functions pickle by reference to it.
    import beam_tag
    sys.exit(beam_tag.main())
