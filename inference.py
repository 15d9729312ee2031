"""Tags CoNLL files or raw text with a trained model folder."""
import sys

from ner.commands.inference import main

if __name__ == "__main__":
    sys.exit(main())
