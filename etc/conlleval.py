"""Chunk evaluation identical to conlleval.pl (CoNLL-2000, version 2004-01-26).

    python etc/conlleval.py [-l] [-r] [-d DELIM] [-o TAG] [FILE] < FILE

Same options and same output bytes as the Perl script; ner/data/conlleval.py says how. Installed,
the same command is ner-conlleval.
"""
import os
import sys

# Run as a script, this folder is on sys.path and the repository root is not.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ner.commands.conlleval import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
