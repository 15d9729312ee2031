"""The command-line tools, one module per command, each with main(argv=None): argparse and one call
into the package. pyproject.toml installs them as console commands (ner-train, ...); the root scripts
(train.py, ...) run the same main. This is the last stage: it may import every other, and no
library module imports it.

A command parses its flags with ner.cli.parse_args (which quiets TensorFlow's logs unless asked for
them) before it imports anything that loads TensorFlow, so --help and a bad flag answer at once."""
