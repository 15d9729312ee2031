"""Tagged sentences -> output: CoNLL lines with a predicted tag column, `word tag` lines, or one
JSON object per sentence. inference.py, the HTTP service and the Beam pipeline all write these."""
from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TextIO

from ner import model_folder
from ner.data.conll import Sentence, format_conll_line
from ner.data.schemes import chunk_spans
from ner.data.text import TextSentence


def describe(words, tags: list[str], confidence, scheme: str, text: str | None = None,
             offsets: Sequence[tuple[int, int]] | None = None) -> dict:
    """One tagged sentence as a JSON object: tokens, tags, confidences and entity spans, each with
    its type, tokens [token_start, token_end) and confidence (its least confident token). Given the
    raw text and each token's character offsets, entities also get character start and end."""
    entities = []
    for kind, start, end in chunk_spans(tags, scheme):
        entity = {"type": kind, "text": " ".join(words[start:end]), "token_start": start, "token_end": end,
                  "confidence": round(float(min(confidence[start:end])), 4)}
        if offsets is not None:
            entity.update(text=text[offsets[start][0]:offsets[end - 1][1]], start=offsets[start][0],
                          end=offsets[end - 1][1])
        entities.append(entity)
    result = {"tokens": list(words), "tags": list(tags), "confidences": [round(float(c), 4) for c in confidence],
              "entities": entities}
    return result if text is None else {"text": text, **result}


def render_conll(sentences: Sequence[Sentence], results) -> str:
    """Each input line with its predicted tag appended; a None result (a -DOCSTART- line) tags O."""
    out = []
    for sentence, result in zip(sentences, results):
        tags = ["O"] * len(sentence) if result is None else result[0]
        out.extend(format_conll_line(line, tag) for line, tag in zip(sentence.lines, tags))
        out.append("")
    return "\n".join(out) + "\n" if out else ""


def render_text(items: Sequence[TextSentence], results, as_json: bool, scheme: str) -> str:
    """`word tag` lines and a blank line per sentence, or with as_json one describe() object per line."""
    out = []
    for item, (tags, confidence) in zip(items, results):
        words = item.sentence.words
        if as_json:
            out.append(json.dumps(describe(words, tags, confidence, scheme, item.text, item.offsets),
                                  ensure_ascii=False))
        else:
            out.extend(f"{word} {tag}" for word, tag in zip(words, tags))
            out.append("")
    return "\n".join(out) + "\n" if out else ""


@contextlib.contextmanager
def open_output(path: str) -> Iterator[TextIO]:
    """Where output is written piece by piece: stdout for '-'; a regular file is written under a
    temporary name beside it and renamed into place at the end, so a failed run leaves no
    half-written output; anything else (a symlink, a device, a FIFO) is written through, never
    replaced."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
    elif os.path.lexists(path) and not (os.path.isfile(path) and not os.path.islink(path)):
        with open(path, "w", encoding="utf-8") as f:
            yield f
    else:
        with model_folder.replacing(path) as f:
            yield f
