"""The reference for ner/model/features/wordpiece.py's graph: the WordPiece pipeline of the
`tokenizers` library (BertNormalizer, BertPreTokenizer, WordPiece) and the windows and word
alignment written as plain Python loops, as the model computed them before they moved into the
graph. Tests compare the graph with it."""
from __future__ import annotations

import numpy as np

from ner.model.features.wordpiece import SPECIAL_TOKENS, read_vocab

MAX_INPUT_CHARS_PER_WORD = 100


def plan_windows(piece_counts: list[int], window: int) -> tuple[list[tuple[int, int]], list[int]]:
    """Splits a sentence into windows of whole words.

    piece_counts[t]: the number of pieces of word t (each 1..window). Returns the windows as
    (first word, last word + 1) and, per word, the index of the window it is read from.
    """
    starts = np.concatenate([[0], np.cumsum(piece_counts)])  # starts[t]: pieces before word t
    count = len(piece_counts)
    if starts[-1] <= window:
        return [(0, count)], [0] * count
    stride = max(window // 2, 1)
    windows = []
    first = 0
    while True:
        end = first
        while end < count and starts[end + 1] - starts[first] <= window:
            end += 1
        windows.append((first, end))
        if end == count:
            break
        # The next window starts about `stride` pieces later, at a word boundary, with no gap.
        following = first + 1
        while following < end and starts[following] - starts[first] < stride:
            following += 1
        first = following
    owner = []
    for t in range(count):
        best, best_context = 0, -1
        for k, (a, b) in enumerate(windows):
            if a <= t < b:
                context = min(starts[t] - starts[a], starts[b] - starts[t + 1])
                if context > best_context:
                    best, best_context = k, context
        owner.append(best)
    return windows, owner


class WordPieceAligner:
    """words [B, T] (bytes, '' padding), lengths [B] -> the inputs of a BERT batch and, for every
    word, the rows of the BERT output that make its vector."""

    def __init__(self, vocab_path: str, lowercase: bool, max_seq_length: int, pooling: str):
        """The settings are taken as valid (the graph's WordPieces checks them)."""
        from tokenizers import Tokenizer, models, normalizers, pre_tokenizers

        ids = {token: i for i, token in enumerate(read_vocab(vocab_path))}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id = (ids[t] for t in SPECIAL_TOKENS)
        self.window = max_seq_length - 2
        self.first_only = pooling == "first"
        tokenizer = Tokenizer(models.WordPiece(ids, unk_token="[UNK]", continuing_subword_prefix="##",
                                               max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
        # strip_accents=None: accents are stripped exactly when lowercasing (BERT's uncased models).
        tokenizer.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                          strip_accents=None, lowercase=lowercase)
        tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        self.tokenizer = tokenizer

    def word_pieces(self, sentences: list[list[str]]) -> list[list[list[int]]]:
        """Per sentence, per word, its piece ids (at least one: a word that normalizes to nothing,
        such as a lone control character, is [UNK]; at most one window's worth)."""
        encodings = self.tokenizer.encode_batch(sentences, is_pretokenized=True, add_special_tokens=False)
        result = []
        for words, encoding in zip(sentences, encodings):
            pieces = [[] for _ in words]
            for piece, word in zip(encoding.ids, encoding.word_ids):
                if word is not None:
                    pieces[word].append(piece)
            result.append([p[: self.window] if p else [self.unk_id] for p in pieces])
        return result

    def __call__(self, words: np.ndarray, lengths: np.ndarray):
        """-> input_ids [N, L] int32 (N windows, [CLS] ... [SEP], [PAD] after), window_lengths [N],
        piece_rows [K] (row n * L + position of a piece in the flattened BERT output) and
        piece_words [K] (b * T + t: the word it belongs to); words past a length get no rows."""
        batch, width = words.shape
        sentences = [[w.decode("utf-8", errors="replace") for w in words[b, :lengths[b]]] for b in range(batch)]
        windows_ids: list[list[int]] = []
        rows: list[tuple[int, int]] = []   # (window, position)
        owners: list[int] = []
        for b, pieces in enumerate(self.word_pieces(sentences)):
            if not pieces:
                continue
            windows, owner = plan_windows([len(p) for p in pieces], self.window)
            first_window = len(windows_ids)
            positions = []
            for first, end in windows:
                ids = [self.cls_id]
                position = {}
                for t in range(first, end):
                    position[t] = len(ids)
                    ids.extend(pieces[t])
                windows_ids.append(ids + [self.sep_id])
                positions.append(position)
            for t, k in enumerate(owner):
                start = positions[k][t]
                count = 1 if self.first_only else len(pieces[t])
                for p in range(start, start + count):
                    rows.append((first_window + k, p))
                    owners.append(b * width + t)
        longest = max((len(ids) for ids in windows_ids), default=2)
        input_ids = np.full((len(windows_ids), longest), self.pad_id, dtype=np.int32)
        for n, ids in enumerate(windows_ids):
            input_ids[n, :len(ids)] = ids
        window_lengths = np.array([len(ids) for ids in windows_ids], dtype=np.int32)
        piece_rows = np.array([n * longest + p for n, p in rows], dtype=np.int32)
        piece_words = np.array(owners, dtype=np.int32)
        return input_ids, window_lengths, piece_rows, piece_words
