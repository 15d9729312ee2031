"""Reading the files of a model folder: a missing or corrupt file is an error that names it.

Loaders wrap each read in reading(path): errors whose message already starts with the path pass
through; anything else raised on a missing or damaged file (a protobuf DecodeError, TensorFlow's
DataLossError, an IndexError from a truncated checkpoint, a UnicodeDecodeError...) becomes a
FileNotFoundError or ValueError "path: ...", so callers catch only those two and users see which
file to fix.
"""
from __future__ import annotations

import contextlib


@contextlib.contextmanager
def reading(path: str, what: str = "model file"):
    try:
        yield
    except Exception as e:
        message = str(e).strip()
        if isinstance(e, (FileNotFoundError, ValueError)) and message.startswith(path):
            raise
        detail = f"{type(e).__name__}: {message.splitlines()[0] if message else ''}"
        if isinstance(e, FileNotFoundError):
            raise FileNotFoundError(f"{path}: {what} missing ({detail})") from None
        raise ValueError(f"{path}: corrupt or unreadable {what} ({detail})") from None
