"""Input (the design card's name): reading CoNLL files and raw text, tag schemes and batching,
which live in ner/data/."""
from ner.data.batching import make_dataset  # noqa: F401
from ner.data.conll import DOCSTART, InputError, Sentence, parse_conll, read_conll  # noqa: F401
from ner.data.schemes import allowed_transitions, chunk_spans, convert_tags, detect_scheme  # noqa: F401
from ner.data.tokenizer import tokenize_texts  # noqa: F401
