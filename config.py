"""The one configuration object (the design card's name): see ner/config.py."""
from ner.config import EMB_CLASSES, ENCODERS, METRICS, TAG_SCHEMES, Config  # noqa: F401
