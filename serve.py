"""Serves a model over HTTP: JSON tagging with micro-batching, health, Prometheus metrics and a web page."""
import sys

from ner.commands.serve import main

if __name__ == "__main__":
    sys.exit(main())
