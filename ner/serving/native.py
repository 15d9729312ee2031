"""libtagger (inference/cc) from Python through ctypes: the C API as a service in another
language would call it, and what ner.serving.loaders.NativeFrozenTagger runs frozen folders on.

    tagger = CTagger("build/cc/libtagger.so", "runs/NAME/frozen", threads=1)
    tags, confidences = tagger.tag([["Angela", "Merkel", "visited", "Paris"]])[0]
    tokens = tagger.tokenize(["Angela Merkel visited Paris."])[0]       # [("Angela", 0, 6), ...]
    tokens, tags, confidences = tagger.tag_text(["Angela Merkel visited Paris."])[0]
"""
from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence


class TaggerError(RuntimeError):
    """A call that libtagger refused, with its message."""


def _load(library_path: str) -> ctypes.CDLL:
    lib = ctypes.CDLL(library_path)
    strings = ctypes.POINTER(ctypes.c_char_p)
    lib.tagger_open.argtypes = [ctypes.c_char_p, ctypes.c_int]
    lib.tagger_open.restype = ctypes.c_void_p
    lib.tagger_close.argtypes = [ctypes.c_void_p]
    lib.tagger_num_feature_columns.argtypes = [ctypes.c_void_p]
    lib.tagger_num_feature_columns.restype = ctypes.c_int
    lib.tagger_tag.argtypes = [ctypes.c_void_p, strings, ctypes.POINTER(ctypes.c_int), ctypes.c_int, strings]
    lib.tagger_tag.restype = ctypes.c_void_p
    lib.tagger_result_size.argtypes = [ctypes.c_void_p]
    lib.tagger_result_size.restype = ctypes.c_size_t
    lib.tagger_result_tags.argtypes = [ctypes.c_void_p]
    lib.tagger_result_tags.restype = strings
    lib.tagger_result_confidences.argtypes = [ctypes.c_void_p]
    lib.tagger_result_confidences.restype = ctypes.POINTER(ctypes.c_float)
    lib.tagger_result_free.argtypes = [ctypes.c_void_p]
    lib.tagger_has_tokenizer.argtypes = [ctypes.c_void_p]
    lib.tagger_has_tokenizer.restype = ctypes.c_int
    for name in ("tagger_tokenize", "tagger_tag_text"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, strings, ctypes.c_int]
        getattr(lib, name).restype = ctypes.c_void_p
    lib.tagger_result_num_sentences.argtypes = [ctypes.c_void_p]
    lib.tagger_result_num_sentences.restype = ctypes.c_int
    lib.tagger_result_tokens.argtypes = [ctypes.c_void_p]
    lib.tagger_result_tokens.restype = strings
    for name in ("tagger_result_sentence_lengths", "tagger_result_starts", "tagger_result_ends"):
        getattr(lib, name).argtypes = [ctypes.c_void_p]
        getattr(lib, name).restype = ctypes.POINTER(ctypes.c_int)
    lib.tagger_last_error.restype = ctypes.c_char_p
    return lib


def _utf8(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


class CTagger:
    def __init__(self, library_path: str, frozen_dir: str, threads: int = 1):
        self._handle = None  # for close() when loading the library fails
        self._lib = _load(library_path)
        self._handle = self._lib.tagger_open(frozen_dir.encode(), threads)
        if not self._handle:
            raise TaggerError(self._lib.tagger_last_error().decode())
        self.num_feature_columns = self._lib.tagger_num_feature_columns(self._handle)
        self.has_tokenizer = self._lib.tagger_has_tokenizer(self._handle) == 1

    def close(self):
        if self._handle:
            self._lib.tagger_close(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def tag(self, sentences: Sequence[Sequence[str]], features: Sequence[Sequence[Sequence[str]]] | None = None
            ) -> list[tuple[list[str], list[float]]]:
        """One batch: sentences of tokens (and, for models with feature columns, per token its
        feature values), as str or UTF-8 bytes -> per sentence (IOB2 tags, confidences)."""
        tokens = [_utf8(token) for sentence in sentences for token in sentence]
        token_array = (ctypes.c_char_p * len(tokens))(*tokens)
        lengths = (ctypes.c_int * len(sentences))(*(len(sentence) for sentence in sentences))
        feature_array = None
        if features is not None:
            values = [_utf8(value) for sentence in features for token in sentence for value in token]
            feature_array = (ctypes.c_char_p * len(values))(*values)
        result = self._lib.tagger_tag(self._handle, token_array, lengths, len(sentences), feature_array)
        if not result:
            raise TaggerError(self._lib.tagger_last_error().decode())
        try:
            size = self._lib.tagger_result_size(result)
            tags = [tag.decode() for tag in self._lib.tagger_result_tags(result)[:size]]
            confidences = self._lib.tagger_result_confidences(result)[:size]
        finally:
            self._lib.tagger_result_free(result)
        out, start = [], 0
        for sentence in sentences:
            out.append((tags[start:start + len(sentence)], confidences[start:start + len(sentence)]))
            start += len(sentence)
        return out

    def tokenize(self, texts: Sequence[str | bytes]) -> list[list[tuple[str, int, int]]]:
        """Raw texts (str or UTF-8 bytes) -> per text its (token, start, end): character offsets
        into the text, end exclusive; the folder's tokenizer graph, as every loader runs it."""
        return [tokens for tokens, _, _ in self._call_text(self._lib.tagger_tokenize, texts)]

    def tag_text(self, texts: Sequence[str | bytes]) -> list[tuple[list[tuple[str, int, int]], list[str], list[float]]]:
        """Raw texts tokenized and tagged in one batch -> per text ((token, start, end) list, IOB2
        tags, confidences); a text without a token gets three empty lists."""
        return self._call_text(self._lib.tagger_tag_text, texts)

    def _call_text(self, function, texts: Sequence[str | bytes]) -> list:
        encoded = [_utf8(text) for text in texts]
        for i, text in enumerate(encoded):
            if b"\0" in text:  # a C string would end there
                raise TaggerError(f"text {i} holds a NUL character, which the C API cannot take")
        text_array = (ctypes.c_char_p * len(encoded))(*encoded)
        result = function(self._handle, text_array, len(encoded))
        if not result:
            raise TaggerError(self._lib.tagger_last_error().decode())
        try:
            size = self._lib.tagger_result_size(result)
            lengths = self._lib.tagger_result_sentence_lengths(result)[:self._lib.tagger_result_num_sentences(result)]
            tokens = [token.decode() for token in self._lib.tagger_result_tokens(result)[:size]]
            starts = self._lib.tagger_result_starts(result)[:size]
            ends = self._lib.tagger_result_ends(result)[:size]
            tag_pointer = self._lib.tagger_result_tags(result)
            tags = [tag.decode() for tag in tag_pointer[:size]] if tag_pointer else []
            confidences = self._lib.tagger_result_confidences(result)[:size] if tag_pointer else []
        finally:
            self._lib.tagger_result_free(result)
        out, start = [], 0
        for length in lengths:
            end = start + length
            out.append((list(zip(tokens[start:end], starts[start:end], ends[start:end])), tags[start:end],
                        confidences[start:end]))
            start = end
        return out


# The C++ runner's library (inference/cc; `make serving` builds it), which frozen folders run on
# when it exists: $NER_TAGGER_LIB names it (empty: never use one), else build/cc/libtagger.so.
NATIVE_LIBRARY_ENV = "NER_TAGGER_LIB"
REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_NATIVE_LIBRARY = os.path.join(REPOSITORY, "build", "cc", "libtagger.so")


def native_library() -> str | None:
    path = os.environ.get(NATIVE_LIBRARY_ENV)
    if path is None:
        path = DEFAULT_NATIVE_LIBRARY if os.path.exists(DEFAULT_NATIVE_LIBRARY) else ""
    return path or None
