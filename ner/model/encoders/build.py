"""The encoder named by config.encoder, over features of width input_dim. Every encoder is called
as encoder(x [B, T, input_dim], lengths [B], training) and reports its output_dim."""
from __future__ import annotations

import tensorflow as tf

from ner.config import Config
from ner.model.encoders.bilstm import BiLSTM
from ner.model.encoders.qrnn import QRNN
from ner.model.encoders.stacked import ResidualSelfAttention, Stacked
from ner.model.encoders.transformer import Transformer


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
