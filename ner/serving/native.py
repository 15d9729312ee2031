"""libtagger (inference/cc) from Python through ctypes: the C API as a service in another
language would call it, and what ner.serving.loaders.NativeFrozenTagger runs frozen folders on.

    tagger = CTagger("build/cc/libtagger.so", "runs/NAME/frozen", threads=1)
    tags, confidences = tagger.tag([["Angela", "Merkel", "visited", "Paris"]])[0]
    # A model that reads document context (tagger.context_words > 0): each sentence's words around it
    tags, confidences = tagger.tag([["Merkel", "visited", "Paris"]], contexts=[(["Angela"], ["today", "."])])[0]
    tagged = tagger.tag_document([["Angela", "Merkel", "visited", "Paris", "."], ["She", "left", "."]])
    tokens = tagger.tokenize(["Angela Merkel visited Paris."])[0]       # [("Angela", 0, 6), ...]
    tokens, tags, confidences = tagger.tag_text(["Angela Merkel visited Paris."])[0]
    tagged = tagger.tag_text_document(["Angela Merkel visited Paris.", "She left."])  # one document
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
    ints = ctypes.POINTER(ctypes.c_int)
    for name in ("tagger_tag", "tagger_tag_document"):
        getattr(lib, name).argtypes = [ctypes.c_void_p, strings, ints, ctypes.c_int, strings]
        getattr(lib, name).restype = ctypes.c_void_p
    lib.tagger_tag_context.argtypes = [ctypes.c_void_p, strings, ints, ctypes.c_int, strings, strings, ints, strings, ints]
    lib.tagger_tag_context.restype = ctypes.c_void_p
    lib.tagger_context_words.argtypes = [ctypes.c_void_p]
    lib.tagger_context_words.restype = ctypes.c_int
    lib.tagger_result_size.argtypes = [ctypes.c_void_p]
    lib.tagger_result_size.restype = ctypes.c_size_t
    lib.tagger_result_tags.argtypes = [ctypes.c_void_p]
    lib.tagger_result_tags.restype = strings
    lib.tagger_result_confidences.argtypes = [ctypes.c_void_p]
    lib.tagger_result_confidences.restype = ctypes.POINTER(ctypes.c_float)
    lib.tagger_result_free.argtypes = [ctypes.c_void_p]
    lib.tagger_has_tokenizer.argtypes = [ctypes.c_void_p]
    lib.tagger_has_tokenizer.restype = ctypes.c_int
    for name in ("tagger_tokenize", "tagger_tag_text", "tagger_tag_text_document"):
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


# A C string ends at NUL, so raw text reaches the C API with U+0001 in its place: another C0 control
# character (Unicode category Cc, grapheme break Control), which the tokenizer reads as it reads NUL
# (a separator, never a token) and which keeps every code point offset. A space would not do: a
# combining mark after a space joins it. The C++ runner (main.cc's ForCApi) does the same.
C_API_NUL = b"\x01"


def _utf8(text: str | bytes) -> bytes:
    return text.encode() if isinstance(text, str) else text


def _strings(values: Sequence[str | bytes]):
    return (ctypes.c_char_p * len(values))(*map(_utf8, values))


def _ints(values: Sequence[int]):
    return (ctypes.c_int * len(values))(*values)


class CTagger:
    def __init__(self, library_path: str, frozen_dir: str, threads: int = 1):
        self._handle = None  # for close() when loading the library fails
        self._lib = _load(library_path)
        self._handle = self._lib.tagger_open(frozen_dir.encode(), threads)
        if not self._handle:
            raise TaggerError(self._lib.tagger_last_error().decode())
        self.num_feature_columns = self._lib.tagger_num_feature_columns(self._handle)
        self.has_tokenizer = self._lib.tagger_has_tokenizer(self._handle) == 1
        # How many words of its document the model reads on each side of a sentence (0: none).
        self.context_words = self._lib.tagger_context_words(self._handle)

    def close(self):
        if self._handle:
            self._lib.tagger_close(self._handle)
            self._handle = None

    def __del__(self):
        self.close()

    def tag(self, sentences: Sequence[Sequence[str]], features: Sequence[Sequence[Sequence[str]]] | None = None,
            contexts: Sequence[tuple[Sequence[str], Sequence[str]]] | None = None) -> list[tuple[list[str], list[float]]]:
        """One batch: sentences of tokens (and, for models with feature columns, per token its
        feature values), as str or UTF-8 bytes -> per sentence (IOB2 tags, confidences). contexts:
        per sentence the words of its document before it (nearest last) and after it (nearest
        first), which a model that reads document context reads beside it; None: each sentence
        alone (tagger_tag; with contexts tagger_tag_context)."""
        arguments = (self._handle, *self._sentences(sentences, features))
        if contexts is None:
            return self._tagged(self._lib.tagger_tag(*arguments), sentences)
        sides = []
        for side in range(2):
            rows = [context[side] for context in contexts]
            sides += [_strings([word for row in rows for word in row]), _ints([len(row) for row in rows])]
        return self._tagged(self._lib.tagger_tag_context(*arguments, *sides), sentences)

    def tag_document(self, sentences: Sequence[Sequence[str]], features: Sequence[Sequence[Sequence[str]]] | None = None
                     ) -> list[tuple[list[str], list[float]]]:
        """tag() of sentences that are one document, in order: the library gives each the words
        around it (tagger_tag_document)."""
        return self._tagged(self._lib.tagger_tag_document(self._handle, *self._sentences(sentences, features)), sentences)

    @staticmethod
    def _sentences(sentences, features) -> tuple:
        """tagger_tag's arguments after the tagger: tokens, lengths, the count, features."""
        tokens = _strings([token for sentence in sentences for token in sentence])
        feature_array = None
        if features is not None:
            feature_array = _strings([value for sentence in features for token in sentence for value in token])
        return tokens, _ints([len(sentence) for sentence in sentences]), len(sentences), feature_array

    def _tagged(self, result, sentences) -> list[tuple[list[str], list[float]]]:
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

    def tag_text_document(self, texts: Sequence[str | bytes]) -> list[tuple[list[tuple[str, int, int]], list[str], list[float]]]:
        """tag_text() of texts (lines) that are the sentences of one document, in order
        (tagger_tag_text_document)."""
        return self._call_text(self._lib.tagger_tag_text_document, texts)

    def _call_text(self, function, texts: Sequence[str | bytes]) -> list:
        encoded = [_utf8(text).replace(b"\0", C_API_NUL) for text in texts]
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
