"""Freezes a model folder's serving function into a GraphDef for the C++ runner."""
import sys

from ner.commands.freeze import main

if __name__ == "__main__":
    sys.exit(main())
