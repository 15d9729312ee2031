"""Tags a sharded corpus with Apache Beam, as ner-inference tags one file."""
import sys

from ner.commands.beam_tag import main

if __name__ == "__main__":
    sys.exit(main())
