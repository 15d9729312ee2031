"""What every command shares: a library error (bad input, a missing or damaged file, a value out of
range) ends the command as one line on stderr and exit status 1, never a traceback; Ctrl-C ends it
with "interrupted" and status 130, as the shell reports a command that SIGINT stopped."""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys

from ner import tf_options

# Set to 1 for TensorFlow's own log lines in every command (as --verbose does).
VERBOSE_ENV = "NER_VERBOSE"

# The library reports what a user can fix as ValueError (InputError among them) or OSError.
USER_ERRORS = (ValueError, OSError)


@contextlib.contextmanager
def user_errors():
    try:
        yield
    except USER_ERRORS as e:
        raise SystemExit(str(e)) from None
    except ModuleNotFoundError as e:
        if not e.name or e.name.partition(".")[0] == "ner":
            raise
        # A checkout's command run by a Python without the project's packages (outside .venv).
        onnx = " (an ONNX folder tags without it: ner-export --format onnx)" if e.name.startswith("tensorflow") else ""
        raise SystemExit(f"{e.name} is not installed for {sys.executable}: run the command in the project's "
                         f"environment (source .venv/bin/activate) or install the package there (pip install .){onnx}"
                         ) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None


def positive(kind):
    """An argparse type: a finite number of `kind` greater than 0."""
    def parse(text):
        value = kind(text)
        if not 0 < value < math.inf:  # NaN fails the comparison too
            raise argparse.ArgumentTypeError(f"expected a positive number, found {text}")
        return value
    return parse


def parse_args(parser: argparse.ArgumentParser, argv=None) -> argparse.Namespace:
    """Every command parses its arguments here: adds --verbose, then, unless it (or NER_VERBOSE=1) asks
    for them, silences TensorFlow's own log lines. Call it before anything imports TensorFlow."""
    _add_verbose(parser)
    args = parser.parse_args(argv)
    _choose_logs(args)
    return args


def parse_known_args(parser: argparse.ArgumentParser, argv=None) -> tuple[argparse.Namespace, list[str]]:
    """parse_args for a command that hands the arguments it does not know on (beam_tag: to Beam's
    pipeline options): returns them beside the parsed ones."""
    _add_verbose(parser)
    args, unknown = parser.parse_known_args(argv)
    _choose_logs(args)
    return args, unknown


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--verbose", action="store_true",
                        help=f"show TensorFlow's own log lines (also {VERBOSE_ENV}=1)")


def _choose_logs(args: argparse.Namespace) -> None:
    if not (args.verbose or os.environ.get(VERBOSE_ENV, "0") not in ("", "0")):
        tf_options.quiet_logs()
