"""ner-conlleval: chunk evaluation identical to conlleval.pl; its command line is ner/data/conlleval.py's
(the Perl script's options, output and exit statuses)."""
from ner.data.conlleval import main  # noqa: F401
