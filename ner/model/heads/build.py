"""The head: emission scores [B, T, N] -> tags. Every head offers

    log_likelihood(emissions, tag_ids, lengths) -> [B]    the training loss, negated
    decode(emissions, lengths) -> (tag ids [B, T], path scores [B])
    posteriors(emissions, lengths) -> [B, T, N]           each tag's probability per token
    description() -> dict                                 what a runner needs to decode natively
                                                          (ner/serving/numpy_head.py, inference/cc/head.cc)
"""
from __future__ import annotations

from ner.config import Config
from ner.data.schemes import allowed_transitions
from ner.model.heads.crf import CRF
from ner.model.heads.softmax import SoftmaxHead


def build_head(config: Config, tag_names: list[str]):
    """A CRF (constrained to the tag scheme's well-formed sequences unless crf_constrained is off) or a softmax."""
    if not config.use_crf:
        return SoftmaxHead(len(tag_names))
    allowed = allowed_transitions(tag_names, config.tag_scheme) if config.crf_constrained else (None,) * 3
    return CRF(len(tag_names), *allowed)
