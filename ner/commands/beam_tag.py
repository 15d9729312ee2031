"""Tags a sharded corpus with Apache Beam: the same output as ner-inference, shard by shard,
on the local runner or any Beam runner (Dataflow, Flink, Spark) chosen by pipeline options.

    ner-beam-tag --model_dir runs/NAME --input 'corpus/*.txt' --output out/pred \\
        [--format conll|text] [--json] [--scheme auto|iob1|iob2|iobes] [--batch_size 256] \\
        [--max_line_bytes 65536] [--max_sentence_tokens 10000] \\
        [Beam pipeline options, e.g. --direct_num_workers 2 --direct_running_mode multi_processing,
         or --runner DataflowRunner --project ... --region ... --temp_location gs://...]

Each file that --input matches is a shard; OUTPUT/<its name> receives exactly what
`ner-inference --input SHARD` writes (tags in the shard's own scheme with --scheme auto).
Shards are read on the workers and cut into the batches ner-inference would tag (sentences
sorted by length), the batches are spread over the workers and tagged by a Beam ModelHandler
that loads the model (a model folder, its export/, frozen/ or onnx/) once per worker process, and
each shard's tagged sentences are put back in order and written as one file. A model trained
with bert_context=document reads each sentence beside its document in its shard (-DOCSTART-
documents in CoNLL, blank-line documents in text). A malformed sentence (or text line) does
not stop the run: it is left out of its shard's output (and of its neighbours' context) and
listed as `shard:line: what was expected` in OUTPUT/_malformed.txt; the command then exits with
status 1. Shards are read line by line with ner-inference's limits (--max_line_bytes,
--max_sentence_tokens) and format checks, a window of sentences at a time: a line or sentence
over a limit, or a line in another format, is such a malformed record. Without --runner the
pipeline runs in this process on Beam's FnApiRunner (the local runner, without the Prism
download that DirectRunner tries).
"""
from __future__ import annotations

import argparse

from ner import cli
from ner.data import limits


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by ner-train, or its export/ "
                        "or frozen/ folder; every worker reads it at this path")
    parser.add_argument("--input", required=True, help="file pattern of the input shards (e.g. 'corpus/*.txt')")
    parser.add_argument("--output", required=True, help="output folder: OUTPUT/<shard name> for each shard, and "
                        "the list of malformed records (above)")
    parser.add_argument("--format", choices=("conll", "text"), default="conll", help="input format (default conll)")
    parser.add_argument("--json", action="store_true", help="text format: one JSON object per sentence")
    parser.add_argument("--scheme", choices=("auto", "iob1", "iob2", "iobes"), default="auto",
                        help="tag scheme to write; auto: each shard's gold column's scheme, else iob2")
    parser.add_argument("--batch_size", type=cli.positive(int), default=256, help="sentences per batch (default 256)")
    limits.add_arguments(parser)
    args, beam_args = cli.parse_known_args(parser, argv)
    with cli.user_errors():
        from ner.beam.pipeline import run  # Beam and TensorFlow load only once the arguments are good
        return run(args.model_dir, args.input, args.output, text=args.format == "text", as_json=args.json,
                   scheme=args.scheme, batch_size=args.batch_size, beam_args=beam_args,
                   limits=limits.from_arguments(args))

