"""Tag schemes (IOB1, IOB2, IOBES): detecting a file's scheme, reading its chunks, converting
between schemes, the tags of a scheme and which tag sequences it allows (the CRF's constraints)."""
from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

SCHEMES = ("iob1", "iob2", "iobes")
_CHUNK_PREFIXES = ("B", "I", "E", "S")
_SCHEME_PREFIXES = {"iob1": ("B", "I"), "iob2": ("B", "I"), "iobes": _CHUNK_PREFIXES}


def parse_tag(tag: str) -> tuple[str, str] | None:
    """(prefix, type) of a chunk tag such as 'B-PER'; None for 'O' and for other names."""
    if len(tag) > 2 and tag[0] in _CHUNK_PREFIXES and tag[1] == "-":
        return tag[0], tag[2:]
    return None


def is_valid_tag(tag: str) -> bool:
    return tag == "O" or parse_tag(tag) is not None


def _check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"unknown tag scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def detect_scheme(tag_sequences: Iterable[Sequence[str]]) -> str:
    """The scheme the tag sequences are written in.

    'iobes' if any tag is E-/S-; else 'iob1' if any I-X starts a chunk (first
    token, or after O or a chunk of another type); else 'iob2'.
    """
    inside_starts_chunk = False
    for tags in tag_sequences:
        previous_type = None  # type of the previous token's chunk; None outside chunks
        for tag in tags:
            parsed = parse_tag(tag)
            if parsed is None:
                previous_type = None
                continue
            prefix, chunk_type = parsed
            if prefix in ("E", "S"):
                return "iobes"
            if prefix == "I" and previous_type != chunk_type:
                inside_starts_chunk = True
            previous_type = chunk_type
    return "iob1" if inside_starts_chunk else "iob2"


def chunk_spans(tags: Sequence[str], scheme: str) -> list[tuple[str, int, int]]:
    """(type, start, end exclusive) of each chunk in `tags`.

    Decoding is the same for every scheme, as in conlleval: B-X and S-X always
    open a chunk; I-X and E-X continue an open chunk of type X and otherwise open
    one (so ill-formed sequences still decode); E-X and S-X close their chunk;
    O closes any chunk. Tags that are neither O nor chunk tags (say a padding
    tag) count as O. Every well-formed sequence of any scheme decodes correctly,
    so `scheme` is only checked for being a known name.
    """
    _check_scheme(scheme)
    spans = []
    open_chunk: tuple[str, int] | None = None  # (type, start)
    for position, tag in enumerate(tags):
        prefix, chunk_type = parse_tag(tag) or ("O", None)
        continues = open_chunk is not None and prefix in ("I", "E") and chunk_type == open_chunk[0]
        if open_chunk is not None and not continues:
            spans.append((open_chunk[0], open_chunk[1], position))
            open_chunk = None
        if chunk_type is not None and open_chunk is None:
            open_chunk = (chunk_type, position)
        if prefix in ("E", "S"):
            spans.append((chunk_type, open_chunk[1], position + 1))
            open_chunk = None
    if open_chunk is not None:
        spans.append((open_chunk[0], open_chunk[1], len(tags)))
    return spans


def convert_tags(tags: Sequence[str], source: str, target: str) -> list[str]:
    """`tags` rewritten from scheme `source` to scheme `target`, chunk by chunk.

    The chunks are those of chunk_spans, so ill-formed input comes out well formed
    and tags that are not chunk tags become 'O'. In IOB1 output a chunk starts with
    B- only when it directly follows a chunk of the same type, with I- otherwise.
    """
    spans = chunk_spans(tags, source)
    _check_scheme(target)
    converted = ["O"] * len(tags)
    previous_end, previous_type = None, None
    for chunk_type, start, end in spans:
        length = end - start
        begin, inside, last, single = (f"{prefix}-{chunk_type}" for prefix in "BIES")
        if target == "iobes":
            chunk = [single] if length == 1 else [begin] + [inside] * (length - 2) + [last]
        elif target == "iob2" or (start == previous_end and chunk_type == previous_type):
            chunk = [begin] + [inside] * (length - 1)
        else:
            chunk = [inside] * length
        converted[start:end] = chunk
        previous_end, previous_type = end, chunk_type
    return converted


def allowed_transitions(
    tag_names: Sequence[str], scheme: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which tag sequences are well formed in `scheme`, for constraining a CRF.

    Returns boolean arrays allowed[previous, next] of shape (N, N), and
    allowed_start, allowed_end of shape (N,). A sequence passes them exactly when
    convert_tags(tags, scheme, scheme) leaves it unchanged:
      iob2:  I-X only after B-X or I-X (so never first);
      iob1:  B-X only after B-X or I-X (so never first);
      iobes: B-X and I-X are followed by I-X or E-X; E-X, S-X and O by B-, S- or O;
             the first tag is B-, S- or O and the last E-, S- or O.
    Chunk tags with a prefix the scheme lacks (E-/S- in IOB1/IOB2) are never
    allowed; names that are not O or chunk tags (say a padding tag) are allowed
    everywhere.
    """
    _check_scheme(scheme)
    # Each name's role: (prefix, type), ("O", None), or None for a name allowed everywhere.
    roles = [("O", None) if name == "O" else parse_tag(name) for name in tag_names]
    usable = [role is None or role[0] in ("O",) + _SCHEME_PREFIXES[scheme] for role in roles]

    size = len(roles)
    transitions = np.zeros((size, size), dtype=bool)
    start = np.zeros(size, dtype=bool)
    end = np.zeros(size, dtype=bool)
    for i, role in enumerate(roles):
        if not usable[i]:
            continue
        # Starting a sentence is like following O; ending one, like being followed by O.
        start[i] = _transition_allowed(("O", None), role, scheme)
        end[i] = _transition_allowed(role, ("O", None), scheme)
        for j, following in enumerate(roles):
            transitions[i, j] = usable[j] and _transition_allowed(role, following, scheme)
    return transitions, start, end


def _transition_allowed(
    previous: tuple[str, str | None] | None, following: tuple[str, str | None] | None, scheme: str
) -> bool:
    if previous is None or following is None:  # not a chunk tag or O: unconstrained
        return True
    previous_prefix, previous_type = previous
    following_prefix, following_type = following
    if scheme == "iobes":
        if previous_prefix in ("B", "I"):
            return following_prefix in ("I", "E") and following_type == previous_type
        return following_prefix in ("B", "S", "O")
    same_type_chunk = previous_prefix != "O" and following_type == previous_type
    if scheme == "iob2":
        return following_prefix != "I" or same_type_chunk
    return following_prefix != "B" or same_type_chunk  # iob1



def tag_names(entity_types: Sequence[str], scheme: str) -> list[str]:
    """Every tag of `scheme` over the entity types, "O" first (id 0)."""
    prefixes = {"iob1": "BI", "iob2": "BI", "iobes": "BIES"}[scheme]
    return ["O"] + [f"{prefix}-{kind}" for kind in entity_types for prefix in prefixes]


def output_scheme(sentences, requested: str, feature_columns: Sequence[int] = ()) -> str:
    """The scheme to write CoNLL output in: as requested, else that of the input's gold NER column,
    else IOB2. The last column is a gold column only when the model does not read it as a feature
    (word POS chunk input to a model of POS and chunk features has none, whatever the chunk
    column's scheme) and every token line has a tag there."""
    if requested != "auto":
        return requested
    tokens = [s.columns for s in sentences if not s.docstart]
    gold = [[token[-1] for token in columns] for columns in tokens]
    first_gold_column = max(feature_columns, default=0) + 1
    has_gold = (gold and all(len(c[0]) > first_gold_column for c in tokens)
                and all(is_valid_tag(t) for g in gold for t in g))
    return detect_scheme(gold) if has_gold else "iob2"
