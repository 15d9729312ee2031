"""Tagging sentences in batches with any model that has `config` and `predict(words, lengths,
features)`: a Tagger, or a loaded export or frozen folder (ner/serving/loaders.py). The one
tagging function of inference.py, dev evaluation in training, the service and Beam."""
from __future__ import annotations

import numpy as np

from ner.data.batching import padded_batch
from ner.data.conll import Sentence
from ner.data.documents import Context, document_contexts
from ner.data.schemes import convert_tags
from ner.progress import progress_bar


def tag_sentences(model, sentences: list[Sentence], scheme: str, batch_size: int, progress: bool = False,
                  contexts: list[Context] | None = None,
                  progress_label: str = "tagging") -> list[tuple[list[str], np.ndarray]]:
    """Tags each sentence (tags in `scheme`, per-token confidences). Sentences are batched
    sorted by length, so padding stays small, and the results come back in input order; a
    sentence of no token (raw text of spaces) gets no tag without reaching the model. Models
    that read document context get each sentence's (ner.data.documents), from `contexts` or else
    from the sentences' own order and document numbers."""
    if contexts is None:
        contexts = document_contexts(sentences, model.config.context_words)
    results: list = [([], np.zeros(0, np.float32))] * len(sentences)
    order = sorted((i for i in range(len(sentences)) if len(sentences[i])), key=lambda i: len(sentences[i]))
    with progress_bar(progress_label, " sentences", total=len(sentences), show=progress, leave=False) as bar:
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            batch = padded_batch([sentences[i] for i in rows], model.config.feature_columns,
                                 [contexts[i] for i in rows])
            output = model.predict(batch["words"], batch["lengths"], batch["features"], batch["left_context"],
                                   batch["right_context"])
            tags, confidence = np.asarray(output["tags"]), np.asarray(output["confidence"])
            for row, (index, length) in enumerate(zip(rows, batch["lengths"])):
                predicted = convert_tags([t.decode() for t in tags[row, :length]], "iob2", scheme)
                results[index] = (predicted, confidence[row, :length])
            bar.update(len(rows))
        bar.update(len(sentences) - len(order))
    return results
