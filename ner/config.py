"""The one configuration object: defaults, then a JSON file, then `--set key=value` overrides.

It is saved as config.json in every model folder, so inference, export and freeze need
only that folder and nothing can drift between training and serving.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field

from ner import model_folder
from ner.data.schemes import SCHEMES

ENCODERS = ("bilstm", "transformer", "qrnn", "bilstm+transformer", "bilstm+mha", "none")
TRANSFORMER_ENCODERS = ("transformer", "bilstm+transformer")
EMB_CLASSES = ("glove", "elmo", "bert", "bert+elmo")
METRICS = ("token_f1", "chunk_f1")
TAG_SCHEMES = SCHEMES
TRANSFORMER_POSITIONS = ("absolute", "relative")  # the encoders add "none" after a BiLSTM
# Keys that steer training only: a trained model tags the same whatever they say, so a model
# folder's config may change them (--resume --epochs does); any other key must stay as trained.
TRAINING_KEYS = frozenset({
    "batch_size", "eval_batch_size", "epochs", "patience", "early_stop_metric", "learning_rate", "lr_decay_rate",
    "lr_decay_steps", "warmup_steps", "clip_norm", "weight_averaging", "seed", "dropout", "word_dropout",
    "transformer_dropout", "attention_dropout", "mha_dropout", "contextual_cache", "bert_learning_rate",
    "bert_warmup_steps", "bert_weight_decay"})
MHA_NORMS = ("post", "pre", "none")


def _integers(low: int, high: int) -> tuple:
    expected = {0: "0 or more,", 1: "a positive integer"}.get(low, f"an integer from {low}")
    return low, high + 1, f"{expected} up to {high}"


_FRACTION = (0.0, 1.0, "0 <= {key} < 1")
# Upper bounds far above any model that fits a machine, so that a typo is one line naming the key
# instead of a TensorFlow allocation error (or a float overflow) deep inside the run.
_SIZE, _COUNT, _STEPS = 65_536, 1_000_000, 10**12
# Numeric keys: (lowest allowed, upper bound excluded or None, what a message says is expected).
RANGES = {
    **{key: _integers(1, _SIZE) for key in (
        "lstm_units", "char_dim", "char_filters", "transformer_units", "transformer_ffn_units", "qrnn_units",
        "feature_dim")},
    **{key: _integers(0, _SIZE) for key in ("casing_dim", "mha_units")},
    **{key: _integers(1, 64) for key in ("lstm_layers", "transformer_layers", "qrnn_layers", "char_kernel",
                                          "transformer_kernel", "qrnn_kernel")},
    "highway_layers": _integers(0, 64),
    **{key: _integers(1, 1024) for key in ("transformer_heads", "mha_heads")},
    "max_word_length": _integers(1, 1000),
    **{key: _integers(1, _COUNT) for key in ("batch_size", "eval_batch_size", "epochs", "patience")},
    "lr_decay_steps": _integers(1, _STEPS),
    **{key: _integers(0, _STEPS) for key in ("warmup_steps", "bert_warmup_steps")},
    "seed": _integers(0, 2**32 - 1),  # what numpy's seed takes
    **{key: (0, None, "0 or more") for key in ("clip_norm", "bert_weight_decay", "bert_learning_rate")},
    **{key: _FRACTION for key in (
        "dropout", "word_dropout", "transformer_dropout", "attention_dropout", "mha_dropout", "weight_averaging")},
    "learning_rate": (1e-12, None, "a positive learning rate"),
    "lr_decay_rate": (1e-12, None, "a decay in (0, 1]"),
    "bert_max_seq_length": _integers(3, 8192),  # at least [CLS], a piece, [SEP]
}


@dataclass
class Config:
    # Features
    emb_class: str = "glove"           # glove | elmo | bert | bert+elmo: contextual vectors join word + char features
    bert_path: str = ""                # folder: Google (bert_config.json + bert_model.ckpt) or HF (config.json + safetensors)
    bert_layers: list = field(default_factory=lambda: [-1])  # hidden states used: 0 embeddings .. -1 last; several: scalar mix
    bert_pooling: str = "mean"         # a word's vector from its pieces: "mean" | "first"
    bert_max_seq_length: int = 128     # pieces per BERT window, [CLS] and [SEP] included; longer sentences: overlapping windows
    bert_lowercase: str = "auto"       # "auto" (tokenizer config, else vocab.txt's casing) | "yes" | "no"
    bert_context: str = "sentence"     # what BERT reads around a sentence: "sentence" (nothing) | "document" (its neighbours)
    bert_finetune: bool = False        # train BERT's weights (AdamW) instead of reading frozen features
    bert_learning_rate: float = 5e-5   # fine-tuning: BERT's own learning rate (warmup, then the lr decay)
    bert_warmup_steps: int = 0         # fine-tuning: linear warmup of bert_learning_rate
    bert_weight_decay: float = 0.01    # fine-tuning: decoupled weight decay (not on LayerNorm and biases)
    elmo_path: str = ""                # folder with bilm's options.json + weights.hdf5
    contextual_cache: bool = True      # training: frozen BERT/ELMo vectors computed once per sentence and kept in memory
    word_emb_trainable: bool = False   # fine-tune the pretrained vectors
    oov_vectors: str = "trained"       # train-only words missing from the pretrained set: "trained" | "zero"
    char_dim: int = 25
    char_filters: int = 50
    char_kernel: int = 3
    max_word_length: int = 30          # longer words are cut for the char CNN only
    feature_columns: list = field(default_factory=list)  # middle CoNLL columns used as features, e.g. [1, 2]
    feature_dim: int = 16
    casing_dim: int = 0                # >0 adds an embedding of the word's shape (Xxx, XXX, xxx, 0.0, ...)
    highway_layers: int = 0            # highway layers on the concatenated features, before the encoder
    dropout: float = 0.5
    word_dropout: float = 0.0          # in training, each word is read as unknown with this probability
    # Encoder and head
    encoder: str = "bilstm"
    lstm_units: int = 200
    lstm_layers: int = 1
    transformer_layers: int = 2        # transformer and bilstm+transformer
    transformer_heads: int = 4
    transformer_units: int = 128       # model width; a multiple of transformer_heads
    transformer_ffn_units: int = 256
    transformer_kernel: int = 3        # width of the feed-forward convolution over time
    transformer_dropout: float = 0.1   # on the positions' sum and each residual branch
    transformer_positions: str = "absolute"  # absolute: sinusoids added to the input (none after a BiLSTM);
                                             # relative: sinusoids of query-key distances in attention (TENER)
    transformer_scaled_attention: bool = True  # divide attention logits by sqrt(head width); TENER: false
    attention_dropout: float = 0.1     # on the attention weights (transformer, bilstm+mha)
    qrnn_units: int = 200              # per direction
    qrnn_layers: int = 2
    qrnn_kernel: int = 2               # width of the causal convolution over time
    mha_heads: int = 4                 # bilstm+mha; must divide the attention's width
    mha_units: int = 0                 # bilstm+mha: width of queries, keys, values; 0: the BiLSTM's (2 * lstm_units)
    mha_dropout: float = 0.5           # bilstm+mha: on the attention branch before the residual sum
    mha_norm: str = "post"             # bilstm+mha: layer norm of the residual sum (post), of the attention's input (pre), none
    mha_gate: bool = False             # bilstm+mha: a learned scalar, 0 at the start, scales the attention branch
    use_crf: bool = True
    crf_constrained: bool = True       # forbid transitions that the tag scheme does not allow
    tag_scheme: str = "iobes"          # the scheme the model is trained in; output goes back to the input's
    # Training
    batch_size: int = 20
    eval_batch_size: int = 256
    epochs: int = 50
    patience: int = 7
    early_stop_metric: str = "token_f1"
    learning_rate: float = 0.001
    lr_decay_rate: float = 0.9         # multiplied in once every lr_decay_steps
    lr_decay_steps: int = 1000
    warmup_steps: int = 0              # linear warmup from 0 to learning_rate
    clip_norm: float = 5.0
    weight_averaging: float = 0.0      # decay of an average of the weights used for dev and the saved model; 0: off
    seed: int = 1

    def __post_init__(self):
        self.validate()

    def validate(self):
        self._check_types()
        choices = {"encoder": ENCODERS, "emb_class": EMB_CLASSES, "tag_scheme": TAG_SCHEMES,
                   "early_stop_metric": METRICS, "oov_vectors": ("trained", "zero"),
                   "transformer_positions": TRANSFORMER_POSITIONS, "mha_norm": MHA_NORMS,
                   "bert_pooling": ("mean", "first"), "bert_lowercase": ("auto", "yes", "no"),
                   "bert_context": ("sentence", "document")}
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"config {key}={getattr(self, key)!r}: expected one of {', '.join(allowed)}")
        for key, (low, high, expected) in RANGES.items():
            value = getattr(self, key)
            # NaN fails every comparison, so `not (low <= value)` also refuses it.
            if not (low <= value and (high is None or value < high)) or value in (math.inf, -math.inf):
                raise ValueError(f"config {key}={value}: expected {expected.format(key=key)}")
        if self.lr_decay_rate > 1.0:
            raise ValueError(f"config lr_decay_rate={self.lr_decay_rate}: expected a decay in (0, 1]")
        # Attention splits its width evenly between heads; checked only for the encoder in use.
        if self.encoder in TRANSFORMER_ENCODERS and self.transformer_units % self.transformer_heads:
            raise ValueError(f"config transformer_units={self.transformer_units}: expected a multiple of "
                             f"transformer_heads={self.transformer_heads}")
        mha_width = self.mha_units or 2 * self.lstm_units
        if self.encoder == "bilstm+mha" and mha_width % self.mha_heads:
            raise ValueError(f"config mha_heads={self.mha_heads}: expected a divisor of the attention's width "
                             f"{mha_width} (mha_units, or 2 * lstm_units when it is 0)")
        if "bert" in self.emb_class:
            if not self.bert_path:
                raise ValueError(f"config emb_class={self.emb_class}: needs bert_path (a BERT folder or a packaged model)")
            if not self.bert_layers or any(not isinstance(i, int) or isinstance(i, bool) for i in self.bert_layers):
                raise ValueError(f"config bert_layers={self.bert_layers}: expected a non-empty list of layer indices")
        elif self.bert_context != "sentence":
            raise ValueError(f"config bert_context={self.bert_context!r}: only BERT features read context "
                             f"(emb_class={self.emb_class})")
        if "elmo" in self.emb_class and not self.elmo_path:
            raise ValueError(f"config emb_class={self.emb_class}: needs elmo_path (a folder with options.json + weights.hdf5)")
        if any(not isinstance(c, int) or c < 1 for c in self.feature_columns):
            raise ValueError(f"config feature_columns={self.feature_columns}: expected column numbers >= 1 "
                             "(0 is the word, the last column the tag)")

    def _check_types(self):
        """JSON gives any type: each key must hold its default's (an int is a fine float)."""
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), getattr(Config, f.name, None)
            expected = type(default) if default is not None else list
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
            elif type(value) is not expected:
                raise ValueError(f"config {f.name}={value!r}: expected a {expected.__name__}")

    @property
    def context_words(self) -> int:
        """How many words of its document, on each side, a sentence is tagged with (0: none). Each
        word has at least one piece, so a window's worth of words is always enough."""
        return self.bert_max_seq_length if self.bert_context == "document" else 0

    def replace(self, **changes) -> Config:
        return dataclasses.replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    def save(self, path: str):
        """Writes atomically: a reader never sees half a config."""
        model_folder.write_text(path, self.to_json())

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> Config:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {', '.join(unknown)}; known keys: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def load(cls, path: str) -> Config:
        values = model_folder.read_json(path, "config file not found")
        try:
            return cls.from_dict(values, source=path)
        except (TypeError, ValueError) as e:  # a bad value: say which file holds it
            if str(e).startswith(path):
                raise
            raise ValueError(f"{path}: {e}") from None

    def with_overrides(self, assignments: list[str]) -> Config:
        """Applies `key=value` strings; values are JSON (true, 0.5, [1,2]) or else plain strings."""
        values = dataclasses.asdict(self)
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            if not sep:
                raise ValueError(f"--set {assignment!r}: expected key=value")
            if key not in values:
                raise ValueError(f"--set {key}: unknown config key; known keys: {', '.join(sorted(values))}")
            try:
                value = json.loads(raw)
            except json.JSONDecodeError:
                value = raw
            values[key] = value
        return Config.from_dict(values, source="--set")
