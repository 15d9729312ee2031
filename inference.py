"""Tags CoNLL files or raw text with a trained model folder.

    python inference.py --model_dir runs/NAME --input FILE|- [--format conll|text] [--output pred.txt]

conll: each input line gets the predicted tag appended as a last column (pred.txt, which
  `python etc/conlleval.py < pred.txt` scores when the input had gold tags); -DOCSTART- lines
  are passed through tagged O.
text:  one sentence per line, tokenized here; writes `word tag` lines, or with --json one
  JSON object per sentence with tokens, tags, confidences and entity spans (character offsets).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

import atomic
import input as conll
import tf_options

TAG_PATTERN = re.compile(r"O|[BIES]-.+")


def output_scheme(sentences: list[conll.Sentence], requested: str) -> str:
    """The scheme to write: as requested, else that of the input's gold column when it has one."""
    if requested != "auto":
        return requested
    tokens = [s.columns for s in sentences if not s.docstart]
    gold = [[token[-1] for token in columns] for columns in tokens]
    has_gold = gold and all(len(c[0]) > 1 for c in tokens) and all(TAG_PATTERN.fullmatch(t) for g in gold for t in g)
    return conll.detect_scheme(gold) if has_gold else "iob2"


def read_text(path: str) -> list[tuple[conll.Sentence, list[tuple[str, int, int]], str]]:
    """One sentence per non-empty line -> (sentence, token offsets, text)."""
    data = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
    name = "<stdin>" if path == "-" else path
    items = []
    for number, raw in enumerate(data.splitlines(), 1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise conll.InputError(name, number, f"expected UTF-8 text, found byte 0x{raw[e.start]:02x} "
                                   f"at offset {e.start}") from None
        tokens = conll.tokenize(text)
        if tokens:
            words = tuple(t for t, _, _ in tokens)
            items.append((conll.Sentence(lines=words, columns=tuple((w,) for w in words), first_line=number),
                          tokens, text))
    return items


def render_conll(sentences, results) -> str:
    out = []
    for sentence, result in zip(sentences, results):
        tags = ["O"] * len(sentence) if result is None else result[0]
        out.extend(conll.format_conll_line(line, tag) for line, tag in zip(sentence.lines, tags))
        out.append("")
    return "\n".join(out) + "\n" if out else ""


def render_text(items, results, as_json: bool, scheme: str) -> str:
    from tagging import describe
    out = []
    for (sentence, tokens, text), (tags, confidence) in zip(items, results):
        if not as_json:
            out.extend(f"{word} {tag}" for word, tag in zip(sentence.words, tags))
            out.append("")
            continue
        record = describe(sentence.words, tags, confidence, scheme, text, [(start, end) for _, start, end in tokens])
        out.append(json.dumps(record, ensure_ascii=False))
    return "\n".join(out) + "\n" if out else ""


def write_output(path: str, text: str):
    """stdout for '-'; otherwise written atomically, so a failed run leaves no half-written output."""
    if path == "-":
        sys.stdout.write(text)
    else:
        atomic.write_text(path, text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True,
                        help="a model folder written by train.py, or its export/ or frozen/ folder")
    parser.add_argument("--input", required=True, help="input file, or - for stdin")
    parser.add_argument("--format", choices=("conll", "text"), default="conll", help="input format (default conll)")
    parser.add_argument("--output", default="-", help="output file, or - for stdout (default)")
    parser.add_argument("--json", action="store_true", help="text format: one JSON object per sentence")
    parser.add_argument("--scheme", choices=("auto", "iob1", "iob2", "iobes"), default="auto",
                        help="tag scheme to write; auto: the input's gold column's scheme, else iob2")
    parser.add_argument("--batch_size", type=int, default=256, help="sentences per batch (default 256)")
    args = parser.parse_args(argv)
    if args.input != "-" and not os.path.exists(args.input):
        raise SystemExit(f"{args.input}: input file not found")

    try:
        if args.format == "conll":
            sentences = conll.read_conll(args.input, tagged=False)
        else:
            items = read_text(args.input)
            sentences = [sentence for sentence, _, _ in items]
    except conll.InputError as e:
        raise SystemExit(str(e)) from None

    tf_options.prefer_plain_cpu_kernels()
    from tagging import load_model, tag_sentences  # TensorFlow loads only once the input is known good
    try:
        model = load_model(args.model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    columns = model.config.feature_columns
    if columns and args.format == "text":
        raise SystemExit(f"{args.model_dir} was trained with CoNLL feature columns {columns}; tag CoNLL input instead")
    for sentence in sentences:
        if not sentence.docstart and columns and len(sentence.columns[0]) <= max(columns):
            raise SystemExit(f"{args.input}:{sentence.first_line}: the model reads column {max(columns) + 1} "
                             f"(features {columns}); found {len(sentence.columns[0])} columns")

    scheme = output_scheme(sentences, args.scheme) if args.format == "conll" else (
        "iob2" if args.scheme == "auto" else args.scheme)
    to_tag = [s for s in sentences if not s.docstart]
    tagged = iter(tag_sentences(model, to_tag, scheme, args.batch_size, progress=args.input != "-"))
    results = [None if s.docstart else next(tagged) for s in sentences]
    if args.format == "conll":
        write_output(args.output, render_conll(sentences, results))
    else:
        write_output(args.output, render_text(items, results, args.json, scheme))


if __name__ == "__main__":
    main()
