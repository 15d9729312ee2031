"""The tagger: feature embeddings -> encoder -> head, composed from the config.

Every entry point takes strings (words [B, T], lengths [B], feature columns [B, T, F]) and
the vocabularies live inside the graph, so training, evaluation and serving share one path.
"""
from __future__ import annotations

import tensorflow as tf

import input as conll
from config import Config
from embvec import RESERVED, Vocabulary
from layers.bilstm import BiLSTM
from layers.char_cnn import CharCNN
from layers.crf import CRF
from layers.dense import Dense
from layers.embedding import Embedding, WordEmbedding
from layers.featurizer import SHAPE_PATTERNS, Featurizer
from layers.softmax import SoftmaxHead

WORDS = tf.TensorSpec([None, None], tf.string, name="words")
LENGTHS = tf.TensorSpec([None], tf.int32, name="lengths")
FEATURES = tf.TensorSpec([None, None, None], tf.string, name="features")
TAGS = tf.TensorSpec([None, None], tf.string, name="tags")


def build_encoder(config: Config, input_dim: int) -> tf.Module:
    if config.encoder == "bilstm":
        return BiLSTM(input_dim, config.lstm_units, config.lstm_layers, config.dropout)
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
        input_dim = (vocab.meta["dim"] + self.char_cnn.output_dim + config.feature_dim * len(config.feature_columns)
                     + config.casing_dim)
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
        parts = [self.word_embedding(featurizer.word_ids(words)), self.char_cnn(featurizer.char_ids(words))]
        parts += [embed(ids) for embed, ids in zip(self.column_embeddings, featurizer.column_ids(features))]
        if self.shape_embedding is not None:
            parts.append(self.shape_embedding(featurizer.shape_ids(words)))
        x = tf.concat(parts, axis=-1)
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
        emissions = self.emissions(words, lengths, features, training=False)
        ids, _ = self.head.decode(emissions, lengths)
        confidence = tf.gather(self.head.marginals(emissions, lengths), ids, batch_dims=2)
        mask = tf.sequence_mask(lengths, tf.shape(words)[1])
        return {"tags": tf.where(mask, self.featurizer.iob2_tags(ids), ""),
                "confidence": tf.where(mask, confidence, 0.0)}
