"""The tagger: feature embeddings -> encoder -> head, composed from the config.

Every entry point takes strings (words [B, T], lengths [B], feature columns [B, T, F]) and
the vocabularies live inside the graph, so training, evaluation and serving share one path.
"""
from __future__ import annotations

import tensorflow as tf

import input as conll
from config import Config
from embvec import RESERVED, UNKNOWN_ID, Vocabulary
from layers.bert import BertFeatures
from layers.bilstm import BiLSTM
from layers.char_cnn import CharCNN
from layers.crf import CRF
from layers.dense import Dense
from layers.elmo import ELMo
from layers.embedding import Embedding, WordEmbedding
from layers.feature_cache import FeatureCache
from layers.featurizer import SHAPE_PATTERNS, Featurizer
from layers.highway import Highway
from layers.qrnn import QRNN
from layers.scalar_mix import ScalarMix
from layers.softmax import SoftmaxHead
from layers.stacked import ResidualSelfAttention, Stacked
from layers.transformer import Transformer

WORDS = tf.TensorSpec([None, None], tf.string, name="words")
LENGTHS = tf.TensorSpec([None], tf.int32, name="lengths")
FEATURES = tf.TensorSpec([None, None, None], tf.string, name="features")
TAGS = tf.TensorSpec([None, None], tf.string, name="tags")


def build_transformer(config: Config, input_dim: int, after_bilstm: bool) -> Transformer:
    # A BiLSTM's output already encodes word order: absolute positions are not added to it.
    positions = "none" if after_bilstm and config.transformer_positions == "absolute" else config.transformer_positions
    return Transformer(input_dim, units=config.transformer_units, layers=config.transformer_layers,
                       heads=config.transformer_heads, ffn_units=config.transformer_ffn_units,
                       kernel=config.transformer_kernel, dropout=config.transformer_dropout,
                       attention_dropout=config.attention_dropout, positions=positions,
                       scaled_attention=config.transformer_scaled_attention)


class NoEncoder(tf.Module):
    """encoder "none": the features go straight to the head (e.g. fine-tuned BERT + CRF)."""

    def __init__(self, input_dim: int, name: str = "no_encoder"):
        super().__init__(name=name)
        self.output_dim = input_dim

    def __call__(self, x: tf.Tensor, lengths: tf.Tensor, training: bool) -> tf.Tensor:
        return x


class NotExportable(ValueError):
    pass


class Contextual(tf.Module):
    """A contextual model's per-layer word vectors [B, T, K, D] -> [B, T, D]: the one layer, or a
    learned scalar mix of the K layers. Frozen models can keep their vectors in a FeatureCache."""

    def __init__(self, model: tf.Module, frozen: bool, name: str):
        super().__init__(name=name)
        self.model = model
        self.frozen = frozen
        self.mix = ScalarMix(model.num_layers) if model.num_layers > 1 else None
        self.output_dim = model.output_dim
        # FeatureCache is no tf.Module nor Trackable: checkpoints and SavedModels never see its table.
        self.cache = None

    def enable_cache(self):
        if self.frozen:
            self.cache = FeatureCache(self.model.num_layers * self.model.output_dim)

    def __call__(self, words, lengths, training: bool) -> tf.Tensor:
        shape = tf.shape(words)
        k, d = self.model.num_layers, self.model.output_dim
        if self.cache is not None:
            flat = self.cache(words, lengths,
                              lambda: tf.reshape(self.model(words, lengths, False), [shape[0], shape[1], k * d]))
            layers = tf.reshape(flat, [shape[0], shape[1], k, d])
        else:
            layers = self.model(words, lengths, training and not self.frozen)
        return self.mix(layers) if self.mix is not None else layers[:, :, 0]


def build_contextual(config: Config) -> list[Contextual]:
    """emb_class: the contextual features that join the word and character features."""
    modules = []
    if "bert" in config.emb_class:
        bert = BertFeatures(config.bert_path, config.bert_layers, config.bert_pooling, config.bert_max_seq_length,
                            config.bert_lowercase, finetune=config.bert_finetune)
        modules.append(Contextual(bert, frozen=not config.bert_finetune, name="bert_features"))
    if "elmo" in config.emb_class:
        modules.append(Contextual(ELMo(config.elmo_path), frozen=True, name="elmo_features"))
    return modules


def build_encoder(config: Config, input_dim: int) -> tf.Module:
    if config.encoder == "none":
        return NoEncoder(input_dim)
    if config.encoder == "transformer":
        return build_transformer(config, input_dim, after_bilstm=False)
    if config.encoder == "qrnn":
        return QRNN(input_dim, units=config.qrnn_units, layers=config.qrnn_layers, width=config.qrnn_kernel,
                    dropout=config.dropout)
    # The others start with a BiLSTM.
    bilstm = BiLSTM(input_dim, config.lstm_units, config.lstm_layers, config.dropout)
    if config.encoder == "bilstm":
        return bilstm
    if config.encoder == "bilstm+transformer":
        return Stacked([bilstm, build_transformer(config, bilstm.output_dim, after_bilstm=True)])
    if config.encoder == "bilstm+mha":
        return Stacked([bilstm, ResidualSelfAttention(bilstm.output_dim, config.mha_heads, config.attention_dropout,
                                                              config.mha_dropout, config.mha_norm, config.mha_gate,
                                                              config.mha_units or None)])
    raise ValueError(f"encoder {config.encoder!r} is not implemented")


class Tagger(tf.Module):
    def __init__(self, config: Config, vocab: Vocabulary, name: str = "tagger"):
        super().__init__(name=name)
        self.config = config
        self.featurizer = Featurizer(vocab, config.tag_scheme, config.feature_columns, config.max_word_length)
        self.tag_names = self.featurizer.tag_names
        self.word_embedding = WordEmbedding(vocab.embeddings(), vocab.meta["num_oov"], config.word_emb_trainable,
                                            config.oov_vectors == "trained")
        self.char_cnn = CharCNN(len(vocab.chars) + RESERVED, config.char_dim, config.char_filters, config.char_kernel)
        self.column_embeddings = [Embedding(len(vocab.columns[c]) + RESERVED, config.feature_dim, name=f"column{c}")
                                  for c in config.feature_columns]
        self.shape_embedding = (Embedding(len(SHAPE_PATTERNS) + 2, config.casing_dim, name="shape")
                                if config.casing_dim > 0 else None)
        try:
            self.contextual = build_contextual(config)
        except ValueError as e:
            raise ValueError(f"emb_class={config.emb_class}: {e}") from None
        input_dim = (vocab.meta["dim"] + self.char_cnn.output_dim + config.feature_dim * len(config.feature_columns)
                     + config.casing_dim + sum(c.output_dim for c in self.contextual))
        self.highway = Highway(input_dim, config.highway_layers) if config.highway_layers > 0 else None
        self.encoder = build_encoder(config, input_dim)
        self.projection = Dense(self.encoder.output_dim, len(self.tag_names), name="projection")
        if config.use_crf:
            allowed = conll.allowed_transitions(self.tag_names, config.tag_scheme) if config.crf_constrained else (None,) * 3
            self.head = CRF(len(self.tag_names), *allowed)
        else:
            self.head = SoftmaxHead(len(self.tag_names))

    def emissions(self, words, lengths, features, training: bool):
        """Per-token tag scores [B, T, num_tags]."""
        featurizer = self.featurizer
        word_ids = featurizer.word_ids(words)
        if training and self.config.word_dropout > 0:
            # Teaches the model to tag words it has no vector for from their characters and context.
            dropped = tf.random.uniform(tf.shape(word_ids)) < self.config.word_dropout
            word_ids = tf.where(dropped & (word_ids > 0), UNKNOWN_ID, word_ids)
        parts = [self.word_embedding(word_ids), self.char_cnn(featurizer.char_ids(words))]
        parts += [embed(ids) for embed, ids in zip(self.column_embeddings, featurizer.column_ids(features))]
        if self.shape_embedding is not None:
            parts.append(self.shape_embedding(featurizer.shape_ids(words)))
        parts += [contextual(words, lengths, training) for contextual in self.contextual]
        x = tf.concat(parts, axis=-1)
        if self.highway is not None:
            x = self.highway(x)
        if training and self.config.dropout > 0:
            x = tf.nn.dropout(x, self.config.dropout)
        h = self.encoder(x, lengths, training)
        if training and self.config.dropout > 0:
            h = tf.nn.dropout(h, self.config.dropout)
        return self.projection(h)

    def loss(self, words, lengths, features, tags, training: bool = True):
        """Mean negative log-likelihood per sentence; tags are strings in the training scheme."""
        emissions = self.emissions(words, lengths, features, training)
        return -tf.reduce_mean(self.head.log_likelihood(emissions, self.featurizer.tag_ids(tags), lengths))

    @tf.function(input_signature=[WORDS, LENGTHS, FEATURES])
    def predict(self, words, lengths, features):
        """-> tags [B, T] (IOB2 strings; '' past each length) and each tag's probability."""
        return self._predictions(words, lengths, features)

    def _predictions(self, words, lengths, features, with_emissions: bool = False):
        emissions = self.emissions(words, lengths, features, training=False)
        ids, _ = self.head.decode(emissions, lengths)
        marginals = self.head.posteriors(emissions, lengths)
        confidence = tf.gather(marginals, ids, batch_dims=2)
        mask = tf.sequence_mask(lengths, tf.shape(words)[1])
        outputs = {"tags": tf.where(mask, self.featurizer.iob2_tags(ids), ""),
                   "confidence": tf.where(mask, confidence, 0.0)}
        if with_emissions:
            outputs["emissions"] = emissions
        return outputs

    def cache_contextual_features(self):
        """Training: frozen BERT/ELMo vectors are computed once per distinct sentence and then looked
        up (layers/feature_cache.py); config contextual_cache=false turns it off. Call before the
        first trace of loss or predict."""
        if self.config.contextual_cache:
            for contextual in self.contextual:
                contextual.enable_cache()

    def serving_function(self, with_emissions: bool = False):
        """predict as a concrete function for export and freezing; its inputs are words and lengths,
        plus features only when the config reads feature columns (no caller feeds an unused input).
        with_emissions adds the emission scores [B, T, num_tags], for runners that decode natively
        (head_description)."""
        if "bert" in self.config.emb_class:
            raise NotExportable(
                f"emb_class={self.config.emb_class}: BERT models cannot be exported or frozen: their WordPiece "
                "tokenization runs in Python (the tokenizers library) and a SavedModel or frozen graph cannot hold "
                "it. Tag with inference.py --model_dir, which runs the checkpoint.")
        if self.config.feature_columns:
            @tf.function(input_signature=[WORDS, LENGTHS, FEATURES])
            def serve(words, lengths, features):
                return self._predictions(words, lengths, features, with_emissions)
        else:
            @tf.function(input_signature=[WORDS, LENGTHS])
            def serve(words, lengths):
                no_features = tf.fill(tf.concat([tf.shape(words), [0]], axis=0), "")
                return self._predictions(words, lengths, no_features, with_emissions)
        return serve.get_concrete_function()

    def head_description(self) -> dict | None:
        """What a runner needs to decode emission scores itself as the graph does: the head type,
        the IOB2 tag of each id and, for a CRF, its constrained scores. None for IOB1 models,
        whose IOB2 output depends on the neighbouring tags (the graph's decoding serves them)."""
        if self.config.tag_scheme == "iob1":
            return None
        tags = [t.decode() for t in tf.gather(self.featurizer.iob2_names, self.featurizer.iob2_ids).numpy()]
        if not self.config.use_crf:
            return {"type": "softmax", "tags": tags}
        transitions, start, end = (scores.numpy().tolist() for scores in self.head.scores())
        return {"type": "crf", "tags": tags, "transitions": transitions, "start": start, "end": end}
