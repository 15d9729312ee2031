"""What every command shares: a library error (bad input, a missing or damaged file, a value out of
range) ends the command as one line on stderr and exit status 1, never a traceback."""
from __future__ import annotations

import argparse
import contextlib
import math

# The library reports what a user can fix as ValueError (InputError among them) or OSError.
USER_ERRORS = (ValueError, OSError)


@contextlib.contextmanager
def user_errors():
    try:
        yield
    except USER_ERRORS as e:
        raise SystemExit(str(e)) from None


def positive(kind):
    """An argparse type: a finite number of `kind` greater than 0."""
    def parse(text):
        value = kind(text)
        if not 0 < value < math.inf:  # NaN fails the comparison too
            raise argparse.ArgumentTypeError(f"expected a positive number, found {text}")
        return value
    return parse
