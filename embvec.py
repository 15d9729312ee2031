"""Builds the vocabularies and the pretrained word-embedding matrix, written once to a folder."""
import sys

from ner.commands.embvec import main

if __name__ == "__main__":
    sys.exit(main())
