"""Trains a tagger, keeping the checkpoint with the best dev score (early stopping)."""
import sys

from ner.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
