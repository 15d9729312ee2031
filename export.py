"""Exports a model folder's serving function as a SavedModel."""
import sys

from ner.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
