"""Words -> the ids a model reads, and decoded tag ids -> IOB2 tags, in numpy without TensorFlow:
exactly what the featurizer's graph computes (ner/model/features/featurizer.py), for runtimes that
run the model from ids (the ONNX folder, ner/serving/onnx_tagger.py).

- word ids: the word, lowercased as tf.strings.lower(encoding="utf-8") does when the vocabulary is
  lowercase (ner/serving/lowercase.py), looked up in words.txt; '' (padding) is 0, a word not in
  the vocabulary UNKNOWN_ID;
- char ids: the word's code points looked up in chars.txt (0 for padding and for U+0000, the
  padding key; 1 for a character not in it), each word cut at L = the batch's longest word, at
  most max_word_length;
- shape ids: 1 + the first SHAPE_PATTERNS entry that matches the whole word, len + 1 for none, 0
  for padding (Python's re and RE2 agree on these patterns: ASCII classes, and '.', which both take
  for any character but "\\n");
- column ids: each configured column's value looked up in its column<i>.txt, not lowercased.

Words are str (what the readers give); TensorFlow also takes bytes, which this does not.
"""
from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ner.config import Config
from ner.data.id_rules import SHAPE_PATTERNS, char_code_points, iob2_output
from ner.data.vocabulary import RESERVED, UNKNOWN_ID, Vocabulary
from ner.serving.lowercase import lower

# The first pattern that matches the whole word is the alternative whose group matched: fullmatch
# tries the alternatives in order.
_SHAPES = re.compile("|".join(f"({pattern})" for pattern in SHAPE_PATTERNS))
_NO_SHAPE = len(SHAPE_PATTERNS) + 1


def _index(keys: Sequence, padding="") -> dict:
    """The graph's tables: keys[i] -> RESERVED + i, padding -> 0 (anything else reads UNKNOWN_ID)."""
    return {padding: 0, **{key: RESERVED + i for i, key in enumerate(keys)}}


def shape_id(word: str) -> int:
    if not word:
        return 0
    match = _SHAPES.fullmatch(word)
    return match.lastindex if match else _NO_SHAPE


class IdMapper:
    """A model's ids from its vocabulary (a model folder's, ner.data.vocabulary) and config."""

    def __init__(self, vocab: Vocabulary, config: Config):
        self.lowercase = bool(vocab.meta["lowercase"])
        self.max_word_length = config.max_word_length
        self.shapes = config.casing_dim > 0
        self.feature_columns = list(config.feature_columns)
        self._words = _index(vocab.words)
        chars = _index(char_code_points(vocab.chars), padding=0)
        self._char_keys = np.array(sorted(chars), np.int64)
        self._char_ids = np.array([chars[key] for key in self._char_keys], np.int32)
        self._columns = [_index(vocab.columns[c]) for c in self.feature_columns]
        output = iob2_output(vocab.entity_types, config.tag_scheme)
        self.iob1 = config.tag_scheme == "iob1"
        self._iob2_names = np.array([name.encode() for name in output["names"]], dtype=object)
        self._iob2_ids, self._kinds, self._chunk_starts = (np.array(output[key], np.int64)
                                                           for key in ("ids", "kinds", "chunk_starts"))

    def word_ids(self, words: np.ndarray) -> np.ndarray:
        """words [B, T] (str, '' padding) -> int32 [B, T]."""
        words = np.asarray(words, dtype=object)
        get = self._words.get
        flat = words.ravel().tolist()
        ids = [get(lower(word), UNKNOWN_ID) for word in flat] if self.lowercase else [get(word, UNKNOWN_ID) for word in flat]
        return np.array(ids, np.int32).reshape(words.shape)

    def char_ids(self, words: np.ndarray) -> np.ndarray:
        """words [B, T] -> int32 [B, T, L]."""
        words = np.asarray(words, dtype=object)
        flat = words.ravel().tolist()
        sizes = np.fromiter(map(len, flat), np.int64, len(flat))
        longest = min(int(sizes.max(initial=0)), self.max_word_length)
        ids = np.zeros((len(flat), longest), np.int32)
        if longest:
            code_points = np.frombuffer("".join(flat).encode("utf-32-le"), np.uint32).astype(np.int64)
            word_of = np.repeat(np.arange(len(flat)), sizes)
            position = np.arange(len(code_points)) - np.repeat(np.cumsum(sizes) - sizes, sizes)
            kept = position < longest
            at = np.minimum(np.searchsorted(self._char_keys, code_points[kept]), len(self._char_keys) - 1)
            ids[word_of[kept], position[kept]] = np.where(self._char_keys[at] == code_points[kept], self._char_ids[at],
                                                          UNKNOWN_ID)
        return ids.reshape(words.shape + (longest,))

    @staticmethod
    def shape_ids(words: np.ndarray) -> np.ndarray:
        """words [B, T] -> int32 [B, T]."""
        words = np.asarray(words, dtype=object)
        return np.array([shape_id(word) for word in words.ravel().tolist()], np.int32).reshape(words.shape)

    def column_ids(self, features: np.ndarray) -> np.ndarray:
        """features [B, T, F] of the configured columns (str, '' padding) -> int32 [B, T, F]."""
        features = np.asarray(features, dtype=object)
        ids = np.zeros(features.shape, np.int32)
        for i, table in enumerate(self._columns):
            ids[:, :, i] = np.array([table.get(value, UNKNOWN_ID) for value in features[:, :, i].ravel().tolist()],
                                    np.int32).reshape(features.shape[:2])
        return ids

    def inputs(self, words: np.ndarray, lengths: np.ndarray, features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A batch as the model reads it (padded_batch's words [B, T], lengths [B] and features [B, T, F])
        -> {"word_ids", "char_ids", "shape_ids" (models with word shapes), "column_ids" (models with
        feature columns), "lengths"}, int32."""
        inputs = {"word_ids": self.word_ids(words), "char_ids": self.char_ids(words)}
        if self.shapes:
            inputs["shape_ids"] = self.shape_ids(words)
        if self.feature_columns:
            inputs["column_ids"] = self.column_ids(features)
        inputs["lengths"] = np.asarray(lengths, np.int32)
        return inputs

    def iob2_tags(self, ids: np.ndarray) -> np.ndarray:
        """Decoded model tag ids [B, T] -> IOB2 tags (bytes) [B, T]: Featurizer.iob2_tags. An IOB1
        model's tag that opens a chunk (its type differs from the previous token's) becomes B-."""
        ids = np.asarray(ids, np.int64)
        iob2 = self._iob2_ids[ids]
        if self.iob1:
            kinds = self._kinds[ids]
            previous = np.pad(kinds[:, :-1], [(0, 0), (1, 0)])
            iob2 = np.where((kinds > 0) & (kinds != previous), self._chunk_starts[ids], iob2)
        return self._iob2_names[iob2]
