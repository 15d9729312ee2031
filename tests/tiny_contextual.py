"""Tiny BERT and ELMo models written in exactly the published formats, from seeded random weights:

- BERT, Google's: bert_config.json, vocab.txt, bert_model.ckpt.{index,data-00000-of-00001}
  written with tf.raw_ops.SaveV2 under Google's variable names (plus the extra variables a
  pre-training checkpoint holds: cls/..., global_step).
- BERT, Hugging Face's: config.json, vocab.txt, model.safetensors (torch Linear weights
  [out, in], names with or without "bert."), optionally tokenizer_config.json.
- ELMo: bilm's options.json + weights.hdf5 (dataset paths as bilm's dump_weights writes them).
"""
from __future__ import annotations

import json
import os
import string

import numpy as np

# An uncased WordPiece vocabulary where every lowercase word splits into pieces.
BERT_VOCAB = (["[PAD]", "[unused0]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
              + ["the", "john", "went", "to", "paris", "berlin", "un", "##believ", "##able", "##ing"]
              + list(string.ascii_lowercase) + ["##" + c for c in string.ascii_lowercase]
              + list(string.digits) + ["##" + c for c in string.digits] + list(".,-'&():;!?"))

TINY_BERT = {"hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 16,
             "max_position_embeddings": 40, "type_vocab_size": 2, "hidden_dropout_prob": 0.1,
             "attention_probs_dropout_prob": 0.1}


def bert_weights(seed: int = 0, config: dict = TINY_BERT, vocab_size: int = len(BERT_VOCAB)) -> dict[str, np.ndarray]:
    """Google-named weights, kernels [in, out]."""
    rng = np.random.default_rng(seed)
    h, inner = config["hidden_size"], config["intermediate_size"]

    def normal(*shape, scale=0.5):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    w = {"bert/embeddings/word_embeddings": normal(vocab_size, h),
         "bert/embeddings/position_embeddings": normal(config["max_position_embeddings"], h),
         "bert/embeddings/token_type_embeddings": normal(config["type_vocab_size"], h),
         "bert/embeddings/LayerNorm/gamma": 1 + normal(h, scale=0.1), "bert/embeddings/LayerNorm/beta": normal(h, scale=0.1)}
    for i in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{i}"
        for name, (n_in, n_out) in {"attention/self/query": (h, h), "attention/self/key": (h, h),
                                    "attention/self/value": (h, h), "attention/output/dense": (h, h),
                                    "intermediate/dense": (h, inner), "output/dense": (inner, h)}.items():
            w[f"{p}/{name}/kernel"] = normal(n_in, n_out)
            w[f"{p}/{name}/bias"] = normal(n_out, scale=0.1)
        for norm in ("attention/output/LayerNorm", "output/LayerNorm"):
            w[f"{p}/{norm}/gamma"] = 1 + normal(h, scale=0.1)
            w[f"{p}/{norm}/beta"] = normal(h, scale=0.1)
    w["bert/pooler/dense/kernel"] = normal(h, h)
    w["bert/pooler/dense/bias"] = normal(h)
    return w


def write_bert_google(folder, weights: dict | None = None, vocab=BERT_VOCAB, hidden_act: str = "gelu") -> str:
    import tensorflow as tf

    os.makedirs(folder, exist_ok=True)
    weights = dict(weights or bert_weights())
    with open(os.path.join(folder, "bert_config.json"), "w") as f:
        json.dump({**TINY_BERT, "vocab_size": len(vocab), "hidden_act": hidden_act, "initializer_range": 0.02}, f)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    # What a pre-training checkpoint holds beside the encoder.
    weights["cls/predictions/output_bias"] = np.zeros(len(vocab), np.float32)
    weights["global_step"] = np.array(1000, np.int64)
    names = sorted(weights)
    tf.raw_ops.SaveV2(prefix=os.path.join(str(folder), "bert_model.ckpt"), tensor_names=names,
                      shape_and_slices=[""] * len(names), tensors=[tf.constant(weights[n]) for n in names])
    return str(folder)


def hf_name(google: str) -> str:
    """Google's name -> the Hugging Face BertModel name (without "bert.")."""
    parts = google.split("/")[1:]
    if parts[0] == "embeddings" and parts[1] != "LayerNorm":
        return f"embeddings.{parts[1]}.weight"
    leaf = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}[parts[-1]]
    path = ".".join(parts[:-1]).replace("encoder.layer_", "encoder.layer.")
    return f"{path}.{leaf}"


def write_bert_hf(folder, weights: dict | None = None, vocab=BERT_VOCAB, prefix: str = "",
                  hidden_act: str = "gelu_new", do_lower_case: bool | None = None) -> str:
    from safetensors.numpy import save_file

    os.makedirs(folder, exist_ok=True)
    weights = weights or bert_weights()
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump({**TINY_BERT, "vocab_size": len(vocab), "hidden_act": hidden_act, "layer_norm_eps": 1e-12,
                   "model_type": "bert", "architectures": ["BertModel"], "pad_token_id": 0,
                   "position_embedding_type": "absolute"}, f)
    with open(os.path.join(folder, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in vocab))
    if do_lower_case is not None:
        with open(os.path.join(folder, "tokenizer_config.json"), "w") as f:
            json.dump({"do_lower_case": do_lower_case, "tokenizer_class": "BertTokenizer"}, f)
    tensors = {}
    for name, value in weights.items():
        if name.endswith("/kernel"):
            value = np.ascontiguousarray(value.T)
        tensors[prefix + hf_name(name)] = value
    tensors[prefix + "embeddings.position_ids"] = np.arange(TINY_BERT["max_position_embeddings"])[None].astype(np.int64)
    save_file(tensors, os.path.join(folder, "model.safetensors"))
    return str(folder)


TINY_ELMO = {"char_cnn": {"activation": "relu", "embedding": {"dim": 4}, "filters": [[1, 4], [2, 6], [3, 6]],
                          "max_characters_per_token": 12, "n_characters": 262, "n_highway": 2},
             "lstm": {"cell_clip": 1.5, "dim": 10, "n_layers": 2, "proj_clip": 1.0, "projection_dim": 6,
                      "use_skip_connections": True},
             "all_clip_norm_val": 10.0, "bidirectional": True, "dropout": 0.1, "n_epochs_train": 10,
             "n_tokens_vocab": 100, "n_negative_samples_batch": 8192, "unroll_steps": 20}


def elmo_weights(options: dict = TINY_ELMO, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cnn, lstm = options["char_cnn"], options["lstm"]
    dim = cnn["embedding"]["dim"]

    def normal(*shape, scale=0.5):
        return (rng.normal(size=shape) * scale).astype(np.float32)

    w = {"char_embed": normal(cnn["n_characters"] - 1, dim, scale=1.0)}
    for i, (width, count) in enumerate(cnn["filters"]):
        w[f"CNN/W_cnn_{i}"] = normal(1, width, dim, count)
        w[f"CNN/b_cnn_{i}"] = normal(count, scale=0.1)
    n_filters = sum(n for _, n in cnn["filters"])
    for k in range(cnn["n_highway"]):
        w[f"CNN_high_{k}/W_carry"] = normal(n_filters, n_filters)
        w[f"CNN_high_{k}/b_carry"] = normal(n_filters, scale=0.1) - 1.0
        w[f"CNN_high_{k}/W_transform"] = normal(n_filters, n_filters)
        w[f"CNN_high_{k}/b_transform"] = normal(n_filters, scale=0.1)
    proj, cell = lstm["projection_dim"], lstm["dim"]
    w["CNN_proj/W_proj"] = normal(n_filters, proj)
    w["CNN_proj/b_proj"] = normal(proj, scale=0.1)
    for d in (0, 1):
        for i in range(lstm["n_layers"]):
            scope = f"RNN_{d}/RNN/MultiRNNCell/Cell{i}/LSTMCell"
            w[f"{scope}/W_0"] = normal(proj + proj, 4 * cell)
            w[f"{scope}/B"] = normal(4 * cell, scale=0.1)
            w[f"{scope}/W_P_0"] = normal(cell, proj)
    return w


def write_elmo(folder, options: dict = TINY_ELMO, weights: dict | None = None) -> str:
    import h5py

    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "options.json"), "w") as f:
        json.dump(options, f)
    with h5py.File(os.path.join(folder, "weights.hdf5"), "w") as f:
        for name, value in (weights or elmo_weights(options)).items():
            f.create_dataset(name, data=value)
    return str(folder)
