"""Contextual word features (emb_class bert, elmo, bert+elmo) that join the word and character features."""
from __future__ import annotations

import tensorflow as tf

from ner.config import Config
from ner.model.features.bert import BertFeatures
from ner.model.features.elmo import ELMo
from ner.model.features.feature_cache import FeatureCache
from ner.model.layers.scalar_mix import ScalarMix


class Contextual(tf.Module):
    """A contextual model's per-layer word vectors [B, T, K, D] -> [B, T, D]: the one layer, or a
    learned scalar mix of the K layers. Frozen models can keep their vectors in a FeatureCache."""

    def __init__(self, model: tf.Module, frozen: bool, name: str, reads_context: bool = False):
        """reads_context: the model takes context=(left_context, right_context) (BertFeatures)."""
        super().__init__(name=name)
        self.model = model
        self.frozen = frozen
        self.reads_context = reads_context
        self.mix = ScalarMix(model.num_layers) if model.num_layers > 1 else None
        self.output_dim = model.output_dim
        # FeatureCache is no tf.Module nor Trackable: checkpoints and SavedModels never see its table.
        self.cache = None

    def enable_cache(self):
        if self.frozen:
            self.cache = FeatureCache(self.model.num_layers * self.model.output_dim)

    def __call__(self, words, lengths, training: bool, context) -> tf.Tensor:
        """context: (left_context, right_context) [B, C], read only by models that read context."""
        shape = tf.shape(words)
        k, d = self.model.num_layers, self.model.output_dim
        context = context if self.reads_context else None

        def compute(training):
            if context is None:
                return self.model(words, lengths, training)
            return self.model(words, lengths, training, context)
        if self.cache is not None:
            flat = self.cache(words, lengths, lambda: tf.reshape(compute(False), [shape[0], shape[1], k * d]), context)
            layers = tf.reshape(flat, [shape[0], shape[1], k, d])
        else:
            layers = compute(training and not self.frozen)
        return self.mix(layers) if self.mix is not None else layers[:, :, 0]


def build_contextual(config: Config) -> list[Contextual]:
    """emb_class: the contextual features that join the word and character features."""
    modules = []
    if "bert" in config.emb_class:
        bert = BertFeatures(config.bert_path, config.bert_layers, config.bert_pooling, config.bert_max_seq_length,
                            config.bert_lowercase, finetune=config.bert_finetune)
        modules.append(Contextual(bert, frozen=not config.bert_finetune, name="bert_features",
                                  reads_context=config.context_words > 0))
    if "elmo" in config.emb_class:
        modules.append(Contextual(ELMo(config.elmo_path), frozen=True, name="elmo_features"))
    return modules
