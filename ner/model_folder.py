"""A model folder's layout, in one place: every file name train.py, export.py and freeze.py
write, the atomic writes that make a reader see an old file or a complete new one, never half
of one, and `reading`, which turns any failure to read one of them into an error naming it.

    MODEL_DIR/
        config.json                    the one config (ner/config.py)
        words.txt chars.txt entity_types.txt column<i>.txt embeddings.npy meta.json
                                       vocabularies (ner/data/vocabulary.py)
        checkpoints/best/              the model to use
        checkpoints/last/              the state to --resume
        history.jsonl                  one line per finished epoch
        logs/                          TensorBoard summaries
        export/                        SavedModel + serving.json + config.json (export.py)
        frozen/                        graph.pb + serving.json + config.json (freeze.py)
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable

CONFIG = "config.json"
WORDS, CHARS, ENTITY_TYPES = "words.txt", "chars.txt", "entity_types.txt"
EMBEDDINGS, VOCABULARY_META = "embeddings.npy", "meta.json"
BEST_CHECKPOINTS = os.path.join("checkpoints", "best")
TRAINED_CONFIG = os.path.join(BEST_CHECKPOINTS, "config.json")  # what best was trained with
LAST_CHECKPOINTS = os.path.join("checkpoints", "last")
CHECKPOINTS = "checkpoints"
HISTORY = "history.jsonl"
LOGS = "logs"
EXPORT_DIR = "export"
FROZEN_DIR = "frozen"
MANIFEST = "serving.json"        # in export/ and frozen/: tensor names, feature columns, the head
FROZEN_GRAPH = "graph.pb"
SIGNATURE = "serving_default"     # the export's serving signature
TOKENIZER_SIGNATURE = "tokenize"   # the export's raw-text tokenizer (ner/data/tokenizer.py)
SAVED_MODEL = "saved_model.pb"
SAVED_VARIABLES = "variables"
# Bookkeeping of the folder itself, never part of a model (an integrity manifest leaves them out):
# the marker naming the command that made a folder, and train.py's lock file (holder's PID inside).
MARKER = ".ner-folder"
LOCK = ".ner-lock"
# In every model, export and frozen folder: the size and SHA-256 of each file its loaders read (ner/integrity.py).
INTEGRITY = "integrity.json"


def column_vocabulary(column: int) -> str:
    return f"column{column}.txt"


def is_export(folder: str) -> bool:
    """Recognised by any of its files, so that a missing one is reported by name."""
    return any(os.path.exists(os.path.join(folder, name)) for name in (SAVED_MODEL, SAVED_VARIABLES))


def is_frozen(folder: str) -> bool:
    return any(os.path.exists(os.path.join(folder, name)) for name in (MANIFEST, FROZEN_GRAPH))


def write_text(path: str, text: str) -> None:
    """Writes to a temporary file beside `path`, then renames it into place."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private to its owner
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def replace_folder(target: str, fill: Callable[[str], None]) -> None:
    """Calls fill(folder) on a fresh folder beside `target`, then renames it to `target`."""
    parent = os.path.dirname(os.path.abspath(target))
    name = os.path.basename(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    fresh = tempfile.mkdtemp(prefix=f".{name}-new-", dir=parent)
    try:
        fill(fresh)
        os.chmod(fresh, 0o755)  # mkdtemp makes it private to its owner
        if os.path.exists(target):
            # rename() cannot replace a non-empty folder: move the old one aside first.
            old = tempfile.mkdtemp(prefix=f".{name}-old-", dir=parent)
            os.replace(target, os.path.join(old, name))
            os.replace(fresh, target)
            shutil.rmtree(old)
        else:
            os.replace(fresh, target)
    except BaseException:
        shutil.rmtree(fresh, ignore_errors=True)
        raise


def read_json(path: str, missing: str) -> dict:
    """A file holding one JSON object; errors name the file (and a syntax error's line). `missing`
    says what its absence means."""
    try:
        with open(path, encoding="utf-8") as f:
            values = json.load(f)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise IsADirectoryError(f"{path}: is a folder, expected a JSON file") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}:{e.lineno}: invalid JSON: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: corrupt: invalid UTF-8 at byte {e.start}") from None
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return values


@contextlib.contextmanager
def reading(path: str, what: str = "model file"):
    """Errors whose message already starts with the path pass through; anything else raised on a
    missing or damaged file (a protobuf DecodeError, TensorFlow's DataLossError, an IndexError from
    a truncated checkpoint, a UnicodeDecodeError...) becomes a FileNotFoundError or ValueError
    "path: ...", so callers catch only those two and users see which file to fix."""
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
