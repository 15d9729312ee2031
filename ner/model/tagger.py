"""The tagger: feature embeddings -> encoder -> head, composed from the config.

Every entry point takes strings (words [B, T], lengths [B], feature columns [B, T, F] and, for
document context, the words around each sentence) and the vocabularies live inside the graph,
so training, evaluation and serving share one path.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ner.config import Config
from ner.data.batching import no_context
from ner.data.tokenizer import tokenize_texts
from ner.data.vocabulary import RESERVED, UNKNOWN_ID, Vocabulary
from ner.model.encoders.build import build_encoder
from ner.model.features.char_cnn import CharCNN
from ner.model.features.contextual import build_contextual
from ner.model.features.embedding import Embedding, WordEmbedding
from ner.model.features.featurizer import SHAPE_PATTERNS, Featurizer
from ner.model.heads.build import build_head
from ner.model.layers.dense import Dense
from ner.model.layers.highway import Highway

WORDS = tf.TensorSpec([None, None], tf.string, name="words")
LENGTHS = tf.TensorSpec([None], tf.int32, name="lengths")
FEATURES = tf.TensorSpec([None, None, None], tf.string, name="features")
TAGS = tf.TensorSpec([None, None], tf.string, name="tags")
# The words of a sentence's document before it (nearest last) and after it (nearest first), ''
# padding after them: read by models with bert_context=document (config.context_words > 0).
LEFT_CONTEXT = tf.TensorSpec([None, None], tf.string, name="left_context")
RIGHT_CONTEXT = tf.TensorSpec([None, None], tf.string, name="right_context")


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
        features = [self.word_embedding, self.char_cnn, *self.column_embeddings, self.shape_embedding, *self.contextual]
        input_dim = sum(feature.output_dim for feature in features if feature is not None)
        self.highway = Highway(input_dim, config.highway_layers) if config.highway_layers > 0 else None
        self.encoder = build_encoder(config, input_dim)
        self.projection = Dense(self.encoder.output_dim, len(self.tag_names), name="projection")
        self.head = build_head(config, self.tag_names)

    def emissions(self, words, lengths, features, training: bool, context=None):
        """Per-token tag scores [B, T, num_tags]. context: (left_context, right_context), or None
        for sentences tagged alone (each its own document)."""
        featurizer = self.featurizer
        word_ids = featurizer.word_ids(words)
        if training and self.config.word_dropout > 0:
            # Teaches the model to tag words it has no vector for from their characters and context.
            dropped = tf.random.uniform(tf.shape(word_ids)) < self.config.word_dropout
            word_ids = tf.where(dropped & (word_ids > 0), UNKNOWN_ID, word_ids)
        shape_ids = featurizer.shape_ids(words) if self.shape_embedding is not None else None
        contextual = [contextual(words, lengths, training, context) for contextual in self.contextual]
        return self.emissions_from_ids(word_ids, featurizer.char_ids(words), featurizer.column_ids(features), shape_ids,
                                       lengths, training, contextual)

    def emissions_from_ids(self, word_ids, char_ids, column_ids: list, shape_ids, lengths, training: bool,
                           contextual: list = ()):
        """emissions after the featurizer: ids (word [B, T], char [B, T, L], one [B, T] per feature column,
        shape [B, T] or None for a model without word shapes) and contextual vectors [B, T, D] -> tag
        scores. Without strings or tables, it is what the ONNX export converts (ner/serving/onnx_export.py)."""
        parts = [self.word_embedding(word_ids), self.char_cnn(char_ids)]
        parts += [embed(ids) for embed, ids in zip(self.column_embeddings, column_ids)]
        if self.shape_embedding is not None:
            parts.append(self.shape_embedding(shape_ids))
        parts += list(contextual)
        x = tf.concat(parts, axis=-1)
        if self.highway is not None:
            x = self.highway(x)
        if training and self.config.dropout > 0:
            x = tf.nn.dropout(x, self.config.dropout)
        h = self.encoder(x, lengths, training)
        if training and self.config.dropout > 0:
            h = tf.nn.dropout(h, self.config.dropout)
        return self.projection(h)

    def loss(self, words, lengths, features, tags, training: bool = True, context=None):
        """Mean negative log-likelihood per sentence; tags are strings in the training scheme."""
        emissions = self.emissions(words, lengths, features, training, context)
        return -tf.reduce_mean(self.head.log_likelihood(emissions, self.featurizer.tag_ids(tags), lengths))

    def predict(self, words, lengths, features, left_context=None, right_context=None):
        """-> tags [B, T] (IOB2 strings; '' past each length) and each tag's probability. Without
        context each sentence is its own document."""
        if left_context is None or right_context is None:
            left_context, right_context = no_context(np.shape(lengths)[0]).values()
        return self._predict(words, lengths, features, left_context, right_context)

    # autograph=False: the model has no Python control flow on tensors, and converting it took
    # most of a checkpoint's load time.
    @tf.function(input_signature=[WORDS, LENGTHS, FEATURES, LEFT_CONTEXT, RIGHT_CONTEXT], autograph=False)
    def _predict(self, words, lengths, features, left_context, right_context):
        return self.predictions(words, lengths, features, (left_context, right_context))

    def predictions(self, words, lengths, features, context=None, with_emissions: bool = False):
        """predict's outputs; with_emissions adds the emission scores [B, T, num_tags], for runners
        that decode them natively (the head's description)."""
        emissions = self.emissions(words, lengths, features, False, context)
        ids, _ = self.head.decode(emissions, lengths)
        marginals = self.head.posteriors(emissions, lengths)
        confidence = tf.gather(marginals, ids, batch_dims=2)
        mask = tf.sequence_mask(lengths, tf.shape(words)[1])
        outputs = {"tags": tf.where(mask, self.featurizer.iob2_tags(ids), ""),
                   "confidence": tf.where(mask, confidence, 0.0)}
        if with_emissions:
            outputs["emissions"] = emissions
        return outputs

    @staticmethod
    def tokenize(texts: list[str]) -> list[list[tuple[str, int, int]]]:
        """Each raw text's (token, start, end): the tokenizer graph that the serving artifacts hold."""
        return tokenize_texts(texts)

    def iob2_tag_names(self) -> list[str]:
        """The IOB2 tag that each head tag id is output as."""
        featurizer = self.featurizer
        return [t.decode() for t in tf.gather(featurizer.iob2_names, featurizer.iob2_ids).numpy()]

    def cache_contextual_features(self):
        """Training: frozen BERT/ELMo vectors are computed once per distinct sentence and then looked
        up (ner/model/features/feature_cache.py); config contextual_cache=false turns it off. Call
        before the first trace of loss or predict."""
        if self.config.contextual_cache:
            for contextual in self.contextual:
                contextual.enable_cache()
