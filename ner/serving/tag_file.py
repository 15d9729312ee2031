"""inference.py's one call: a CoNLL file or raw text (one sentence per line) tagged with any form of
a model folder and written as CoNLL with a predicted tag column, `word tag` lines or JSON."""
from __future__ import annotations

import os

from ner import paths
from ner.data.conll import check_feature_columns, check_text_input, display_name, read_bytes, read_conll
from ner.data.render import render_conll, render_text, write_output
from ner.data.schemes import output_scheme
from ner.data.text import parse_text


def tag_file(model_dir: str, input_path: str, output_path: str = "-", text: bool = False, as_json: bool = False,
             scheme: str = "auto", batch_size: int = 256) -> None:
    paths.input_file(input_path, "--input")
    paths.output_file(output_path, "--output")
    if "-" not in (input_path, output_path) and os.path.exists(output_path) and os.path.samefile(input_path, output_path):
        raise ValueError(f"{output_path}: --output is the --input; writing it would replace the input")
    if text:
        items = parse_text(read_bytes(input_path), display_name(input_path))
        sentences = [item.sentence for item in items]
    else:
        sentences = read_conll(input_path, tagged=False)

    from ner import tf_options
    tf_options.prefer_plain_cpu_kernels()
    # TensorFlow loads only once the input is known good.
    from ner.model.tagging import tag_sentences
    from ner.serving.loaders import load_model
    model = load_model(model_dir)
    columns = model.config.feature_columns
    if text:
        check_text_input(columns, model_dir)
    for sentence in sentences:
        check_feature_columns(sentence, columns, display_name(input_path))

    if text:
        scheme = "iob2" if scheme == "auto" else scheme
    else:
        scheme = output_scheme(sentences, scheme, columns)
    to_tag = [s for s in sentences if not s.docstart]
    tagged = iter(tag_sentences(model, to_tag, scheme, batch_size, progress=input_path != "-"))
    results = [None if s.docstart else next(tagged) for s in sentences]
    if text:
        write_output(output_path, render_text(items, results, as_json, scheme))
    else:
        write_output(output_path, render_conll(sentences, results))
