"""The rules by which a model's strings become ids and its tag ids become IOB2 tags, without
TensorFlow: one source for the graph's featurizer (ner/model/features/featurizer.py) and its numpy
twin (ner/serving/ids.py)."""
from __future__ import annotations

from collections.abc import Sequence

from ner.data.schemes import tag_names

# Word shapes for the casing feature; lowercased word vectors lose what these keep. A word's shape
# id is 1 + the first pattern that matches the whole word, or len + 1 for none; padding is 0.
SHAPE_PATTERNS = ("[a-z]+", "[A-Z]+", "[A-Z][a-z]+", ".*[0-9].*", ".*[A-Za-z].*")


def char_code_points(chars: Sequence[str]) -> list[int]:
    """The vocabulary's characters as Unicode code points (how char ids read words)."""
    for i, char in enumerate(chars):
        if len(char) != 1:
            raise ValueError(f"chars.txt line {i + 1}: {char!r} is not one character")
    return [ord(char) for char in chars]


def iob2_output(entity_types: Sequence[str], tag_scheme: str) -> dict[str, list]:
    """How decoded model tag ids become IOB2 tags: "names" (the IOB2 tags), and per model tag id its
    IOB2 tag's index in names ("ids": S- -> B-, E- -> I-), its entity type ("kinds", 1 + index;
    0 for O) and the index of its type's B- tag ("chunk_starts"), which an IOB1 model's tag becomes
    where it opens a chunk (its type differs from the previous token's)."""
    names = tag_names(entity_types, "iob2")
    model_tags = tag_names(entity_types, tag_scheme)
    kinds = [None] + list(entity_types)
    kind_of = [kinds.index(name[2:]) if name != "O" else 0 for name in model_tags]
    prefix_of = {"B": "B", "S": "B", "I": "I", "E": "I"}
    return {"names": names,
            "ids": [0 if name == "O" else names.index(f"{prefix_of[name[0]]}-{name[2:]}") for name in model_tags],
            "kinds": kind_of,
            "chunk_starts": [0 if k == 0 else names.index(f"B-{kinds[k]}") for k in kind_of]}
