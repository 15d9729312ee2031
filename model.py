"""The model (the design card's name): the tagger lives in ner/model/tagger.py."""
from ner.model.tagger import Tagger  # noqa: F401
