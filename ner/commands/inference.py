"""Tags CoNLL files or raw text with a trained model folder.

    ner-inference --model_dir runs/NAME --input FILE|- [--format conll|text] [--output pred.txt]

conll: each input line gets the predicted tag appended as a last column (pred.txt, which
  `ner-conlleval < pred.txt` scores when the input had gold tags); -DOCSTART- lines are passed
  through tagged O.
text:  one sentence per line, tokenized by the model's tokenizer graph; writes `word tag` lines, or
  with --json one JSON object per sentence with tokens, tags, confidences and entity spans
  (character offsets).

Input is read line by line and bounded before it is tokenized or tagged: a line of at most
--max_line_bytes (65536) bytes, a sentence of at most --max_sentence_tokens (10000) tokens, and a
file is tagged a window at a time (ner/data/limits.py). Input in another format is refused with
the flag to use: prose as CoNLL (a column after those the model reads that holds no tag: the gold
column must hold tags), CoNLL as text (a -DOCSTART- line, or a block of lines ending in tags),
--json without --format text.

Models trained with bert_context=document read each sentence beside its document: -DOCSTART- lines
start documents in CoNLL, blank lines end them in text (a text without one is one document). From
stdin (--input -) such a model tags a sentence once its document has ended; other models, once the
sentence has.
"""
from __future__ import annotations

import argparse

from ner import cli
from ner.data import limits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="a model folder written by ner-train, or its export/, frozen/ or onnx/ folder "
                             "(onnx/: no TensorFlow needed)")
    parser.add_argument("--input", required=True, help="input file, or - for stdin")
    parser.add_argument("--format", choices=("conll", "text"), default="conll", help="input format (default conll)")
    parser.add_argument("--output", default="-", help="output file, or - for stdout (default)")
    parser.add_argument("--json", action="store_true", help="text format: one JSON object per sentence")
    parser.add_argument("--scheme", choices=("auto", "iob1", "iob2", "iobes"), default="auto",
                        help="tag scheme to write; auto: the input's gold column's scheme, else iob2")
    parser.add_argument("--batch_size", type=cli.positive(int), default=256, help="sentences per batch (default 256)")
    limits.add_arguments(parser)
    args = cli.parse_args(parser, argv)
    with cli.user_errors():
        from ner.serving.tag_file import tag_file  # it chooses TensorFlow's CPU kernels before TensorFlow loads
        tag_file(args.model_dir, args.input, args.output, text=args.format == "text", as_json=args.json,
                 scheme=args.scheme, batch_size=args.batch_size, limits=limits.from_arguments(args))
