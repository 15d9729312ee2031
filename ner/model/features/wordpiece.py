"""BERT's WordPiece tokenization of already split words, and the alignment of word pieces back
to words, including sentences longer than one BERT window, all as TensorFlow ops, so that a
model with BERT features exports and freezes like any other.

Tokenization is TensorFlow Text's: FastBertNormalizer (BERT's text cleaning; for uncased
vocabularies lowercasing, NFD and accent stripping) and FastWordpieceTokenizer built from
vocab.txt (whitespace and punctuation split, CJK characters one by one, greedy longest match,
"##" continuations, [UNK] for a word over 100 bytes). It gives the pieces of the `tokenizers`
library's BERT pipeline (tests/model/wordpiece_reference.py keeps it as the reference) with
these exceptions: uncased, compatibility characters are folded as NFKC folds them (the
ligature "\ufb01" is "fi", "\u216b" is "xii") and "\u00df" becomes "ss"; a word over 100 bytes
but not over 100 characters is [UNK] here. A word with no piece (a lone control character) is
[UNK].

Windows: a sentence whose pieces do not fit in max_seq_length - 2 ([CLS] and [SEP]) is cut
into overlapping windows that start and end at word boundaries, each about half a window
after the previous one. Every word is read from the window in which it has the most context
on its poorer side (BERT's "max context" rule for SQuAD), so no word is lost and none is read
at a window's edge when another window has it nearer the middle.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ner import op_libraries

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]")
MAX_BYTES_PER_WORD = 100  # BERT's WordPiece: longer words become [UNK]
_DROPPED = r"[\x{0}-\x{8}\x{B}\x{C}\x{E}-\x{1F}\x{7F}-\x{9F}\p{Cf}\x{FFFD}]"  # all but tab, LF and CR


def _count_words(words):
    """[B, C] words, '' padding after them -> how many each row holds [B]."""
    return tf.reduce_sum(tf.cast(tf.not_equal(words, ""), tf.int32), 1)


def read_vocab(path: str) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def vocab_is_uncased(tokens: list[str]) -> bool:
    """An uncased vocabulary has no capital letters outside its [SPECIAL] tokens."""
    return not any(any(c.isupper() for c in t) for t in tokens if not (t.startswith("[") and t.endswith("]")))


class WordPieces(tf.Module):
    """words [B, T] (strings, '' padding), lengths [B] -> the inputs of a BERT batch and, for every
    word, the rows of the BERT output that make its vector:
      input_ids [N, L] int32: N windows, [CLS] ... [SEP], [PAD] after;
      window_lengths [N];
      piece_rows [K]: row n * L + position of a piece in the flattened BERT output;
      piece_words [K]: b * T + t, the word the piece belongs to (words past a length get none)."""

    def __init__(self, vocab_path: str, lowercase: bool, max_seq_length: int, pooling: str):
        super().__init__(name="word_pieces")
        if pooling not in ("mean", "first"):
            raise ValueError(f"word-piece pooling {pooling!r}: expected mean or first")
        if max_seq_length < 3:
            raise ValueError(f"max_seq_length={max_seq_length}: expected at least 3 ([CLS] piece [SEP])")
        vocab = read_vocab(vocab_path)
        ids = {token: i for i, token in enumerate(vocab)}
        if len(ids) < len(vocab):
            repeated = next(token for i, token in enumerate(vocab) if ids[token] != i)
            raise ValueError(f"{vocab_path}: expected each token once, found {repeated!r} twice")
        missing = [t for t in SPECIAL_TOKENS if t not in ids]
        if missing:
            raise ValueError(f"{vocab_path}: no {', '.join(missing)} token")
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (ids[t] for t in SPECIAL_TOKENS)
        self.window = max_seq_length - 2
        self.first_only = pooling == "first"
        normalizer = op_libraries.model_builder("pywrap_fast_bert_normalizer_model_builder")
        wordpiece = op_libraries.model_builder("pywrap_fast_wordpiece_tokenizer_model_builder")
        # The models are flatbuffers, kept as uint8 constants (a string constant could be cut at a NUL).
        self._normalizer_model = np.frombuffer(normalizer.build_fast_bert_normalizer_model(lowercase), np.uint8)
        self._wordpiece_model = np.frombuffer(wordpiece.build_fast_wordpiece_model(
            vocab, MAX_BYTES_PER_WORD, "##", "[UNK]", False, False), np.uint8)

    def word_pieces(self, words):
        """words [M] -> their piece ids [M, (pieces)] int32: at least one ([UNK] for a word that
        normalizes to nothing), at most one window's worth."""
        # BERT's text cleaning drops control and format characters and U+FFFD; the normalizer does so
        # only when it lowercases.
        cleaned = tf.strings.regex_replace(words, _DROPPED, "")
        # get_offsets=True although the offsets go unused: graphs drop an attribute at its default
        # value, and the op's kernel then fails to find it when a C program runs the graph.
        normalized, _, _ = op_libraries.load(op_libraries.FAST_BERT_NORMALIZER).fast_bert_normalize(
            cleaned, tf.constant(self._normalizer_model), get_offsets=True)
        _, piece_ids, splits, _, _ = op_libraries.load(op_libraries.FAST_WORDPIECE).fast_wordpiece_tokenize_with_offsets(
            normalized, tf.constant(self._wordpiece_model))
        pieces = tf.RaggedTensor.from_row_splits(tf.cast(piece_ids, tf.int32), splits)
        found = tf.cast(pieces.row_lengths(), tf.int32)
        counts = tf.maximum(tf.minimum(found, self.window), 1)
        # Each word's first `counts` pieces, or the [UNK] appended after all pieces.
        take = tf.ragged.range(counts).flat_values + tf.repeat(tf.cast(pieces.row_starts(), tf.int32), counts)
        take = tf.where(tf.repeat(found > 0, counts), take, tf.size(pieces.flat_values))
        values = tf.gather(tf.concat([pieces.flat_values, [self.unk_id]], 0), take)
        return tf.RaggedTensor.from_row_lengths(values, counts)

    def __call__(self, words, lengths):
        lengths = tf.cast(lengths, tf.int32)
        width = tf.shape(words)[1]
        positions = tf.cast(tf.where(tf.sequence_mask(lengths, width)), tf.int32)  # [M, 2] (b, t), row-major
        return self._read(self.word_pieces(tf.gather_nd(words, positions)), positions, lengths, width)

    def with_context(self, words, lengths, left_context, right_context):
        """Each sentence read together with the nearest words of its document that fit in its window
        beside it: left_context [B, C] (the words before the sentence, nearest last) and
        right_context [B, C'] (those after it, nearest first), '' padding after the words.

        The pieces that the sentence leaves free in its window (none when it fills one or more) go
        half to each side, and all to one side when the other has fewer; a side keeps its nearest
        words whose pieces fit. -> __call__'s four outputs over each sentence's extended words
        [B, E], how many left-context words precede each sentence in them [B], and E."""
        lengths = tf.cast(lengths, tf.int32)
        sentences = tf.RaggedTensor.from_tensor(words, lengths=lengths)
        left = tf.RaggedTensor.from_tensor(left_context, lengths=_count_words(left_context))
        right = tf.RaggedTensor.from_tensor(right_context, lengths=_count_words(right_context))
        parts = [left, sentences, right]
        pieces = self.word_pieces(tf.concat([part.flat_values for part in parts], 0))
        counts = tf.cast(pieces.row_lengths(), tf.int32)
        # Each part's words' piece counts, and where each part's words start among all words.
        ends = tf.cumsum([tf.size(part.flat_values) for part in parts])
        firsts = ends - tf.stack([tf.size(part.flat_values) for part in parts])
        left_counts, sentence_counts, right_counts = (
            part.with_flat_values(counts[firsts[i]:ends[i]]) for i, part in enumerate(parts))
        free = tf.maximum(self.window - tf.reduce_sum(sentence_counts, 1), 0)
        left_total, right_total = tf.reduce_sum(left_counts, 1), tf.reduce_sum(right_counts, 1)
        half = free // 2
        left_budget = tf.minimum(tf.where(right_total < free - half, free - right_total, half), left_total)
        right_budget = free - left_budget
        # A side keeps the words whose pieces, counted from the sentence outwards, fit in its budget.
        from_left = tf.cumsum(left_counts.to_tensor(), axis=1, reverse=True)
        kept_left = tf.reduce_sum(tf.cast((from_left <= left_budget[:, None]) & (left_counts.to_tensor(-1) >= 0),
                                          tf.int32), 1)
        from_right = tf.cumsum(right_counts.to_tensor(), axis=1)
        kept_right = tf.reduce_sum(tf.cast((from_right <= right_budget[:, None]) & (right_counts.to_tensor(-1) >= 0),
                                           tf.int32), 1)
        # The extended sentences as indices into all words: kept left words, the sentence, kept right words.
        left_lengths = tf.cast(left.row_lengths(), tf.int32)
        left_index = tf.ragged.range(left_lengths - kept_left, left_lengths) + tf.cast(left.row_starts(), tf.int32)[:, None]
        sentence_index = tf.ragged.range(lengths) + (firsts[1] + tf.cast(sentences.row_starts(), tf.int32))[:, None]
        right_index = tf.ragged.range(kept_right) + (firsts[2] + tf.cast(right.row_starts(), tf.int32))[:, None]
        extended = tf.concat([left_index, sentence_index, right_index], axis=1)
        extended_lengths = tf.cast(extended.row_lengths(), tf.int32)
        width = tf.reduce_max(tf.concat([extended_lengths, [0]], 0))
        positions = tf.cast(tf.where(tf.sequence_mask(extended_lengths, width)), tf.int32)
        return self._read(tf.gather(pieces, extended.flat_values), positions, extended_lengths, width), kept_left, width

    def _read(self, pieces, positions, lengths, width):
        """pieces [M, (pieces)] of the words at positions [M, 2] of sentences of these lengths [B]
        in a batch `width` words wide -> __call__'s outputs."""
        batch = tf.size(lengths)
        counts = tf.cast(pieces.row_lengths(), tf.int32)
        # starts[b, t]: pieces before word t of sentence b, for t = 0..lengths[b]; a large value after.
        per_sentence = tf.RaggedTensor.from_row_lengths(counts, lengths)
        starts = tf.concat([tf.zeros([batch, 1], tf.int32), tf.cumsum(per_sentence, axis=1).to_tensor(shape=[batch, width])], 1)
        beyond = tf.range(width + 1)[None, :] > lengths[:, None]
        starts = tf.where(beyond, tf.int32.max // 2, starts)
        first_words, window_ends, window_counts = self._windows(starts, lengths)
        return self._batch(pieces, positions, starts, lengths, first_words, window_ends, window_counts, width)

    def _windows(self, starts, lengths):
        """The windows of each sentence, in order: (first word, last word + 1) [W] each, sentence by
        sentence, and the number of windows of each sentence [B]. A window holds the words whose
        pieces fit in it from its first word on; the next starts at the first word at least half a
        window later (and at the latest where this one ends)."""
        stride = max(self.window // 2, 1)
        first = tf.range(tf.shape(starts)[1] - 1)[None, :] + tf.zeros_like(starts[:, :1])  # [B, T]
        first_start = starts[:, :-1]
        end_of = tf.searchsorted(starts, first_start + self.window, side="right") - 1
        end_of = tf.maximum(end_of, first + 1)  # a word never has more pieces than a window
        next_of = tf.minimum(end_of, tf.searchsorted(starts, first_start + stride, side="left"))

        def step(current, active, firsts, ends, actives, i):
            end = tf.gather(end_of, current, batch_dims=1)
            firsts, ends, actives = firsts.write(i, current), ends.write(i, end), actives.write(i, active)
            active = active & (end < lengths)
            current = tf.where(active, tf.gather(next_of, current, batch_dims=1), current)
            return current, active, firsts, ends, actives, i + 1

        def arrays():
            return tf.TensorArray(tf.int32, size=0, dynamic_size=True)
        start = (tf.zeros_like(lengths), lengths > 0, arrays(), arrays(), tf.TensorArray(tf.bool, 0, dynamic_size=True),
                 tf.constant(0))
        # At least one step, so that the arrays are never empty (stacking none has no shape).
        _, _, firsts, ends, actives, _ = tf.while_loop(
            lambda current, active, firsts, ends, actives, i: (i == 0) | tf.reduce_any(active), step, start)
        taken = tf.transpose(actives.stack())  # [B, I]: sentence by sentence, windows in order
        return (tf.boolean_mask(tf.transpose(firsts.stack()), taken), tf.boolean_mask(tf.transpose(ends.stack()), taken),
                tf.reduce_sum(tf.cast(taken, tf.int32), 1))

    def _batch(self, pieces, positions, starts, lengths, first_words, window_ends, window_counts, width):
        sentence_of_window = tf.repeat(tf.range(tf.size(window_counts)), window_counts)
        window_start = tf.gather_nd(starts, tf.stack([sentence_of_window, first_words], 1))
        window_pieces = tf.gather_nd(starts, tf.stack([sentence_of_window, window_ends], 1)) - window_start
        # The pieces of every sentence lie one after another in pieces.flat_values.
        totals = tf.gather(starts, lengths, batch_dims=1)
        sentence_piece_start = tf.gather(tf.cumsum(totals, exclusive=True), sentence_of_window)
        take = tf.ragged.range(window_pieces) + (sentence_piece_start + window_start)[:, None]
        ids = tf.gather(pieces.flat_values, take)
        ids = tf.concat([tf.fill([tf.size(window_pieces), 1], self.cls_id), ids.to_tensor(self.pad_id)], 1)
        longest = tf.reduce_max(tf.concat([window_pieces, [0]], 0)) + 2
        ids = tf.pad(ids, [[0, 0], [0, 1]], constant_values=self.pad_id)[:, :longest]
        ids = tf.tensor_scatter_nd_update(ids, tf.stack([tf.range(tf.size(window_pieces)), window_pieces + 1], 1),
                                          tf.fill([tf.size(window_pieces)], self.sep_id))
        window_lengths = window_pieces + 2

        # The window each word is read from: the most context on its poorer side, the first on a tie.
        sentence, word = positions[:, 0], positions[:, 1]
        first_window = tf.gather(tf.concat([[0], tf.cumsum(window_counts)], 0), sentence)
        most = tf.reduce_max(tf.concat([window_counts, [0]], 0))
        candidate = first_window[:, None] + tf.range(most)[None, :]  # [M, most]
        valid = tf.range(most)[None, :] < tf.gather(window_counts, sentence)[:, None]
        candidate = tf.where(valid, candidate, 0)
        a, e = tf.gather(first_words, candidate), tf.gather(window_ends, candidate)
        word_start = tf.gather_nd(starts, positions)[:, None]
        word_end = tf.gather_nd(starts, tf.stack([sentence, word + 1], 1))[:, None]
        sentence_starts = tf.gather(starts, sentence)
        context = tf.minimum(word_start - tf.gather(sentence_starts, a, batch_dims=1),
                             tf.gather(sentence_starts, e, batch_dims=1) - word_end)
        inside = valid & (a <= word[:, None]) & (word[:, None] < e)
        score = tf.where(inside, context, -1) * (most + 1) + (most - tf.range(most))[None, :]
        owner = tf.gather(candidate, tf.argmax(score, axis=1, output_type=tf.int32), batch_dims=1)

        counts = tf.cast(pieces.row_lengths(), tf.int32)
        count = tf.ones_like(counts) if self.first_only else counts
        position = 1 + word_start[:, 0] - tf.gather(window_start, owner)
        rows = tf.ragged.range(count) + (owner * longest + position)[:, None]
        piece_words = tf.repeat(sentence * width + word, count)
        return ids, window_lengths, rows.flat_values, piece_words
