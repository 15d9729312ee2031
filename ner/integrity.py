"""A folder's integrity manifest (model_folder.INTEGRITY): the size and SHA-256 digest of every
file its loaders read, written by the command that wrote the files, checked by every loader
before it reads any of them, so that a file changed since (cut, edited, replaced) is named
instead of being read:

    {"written_by": "freeze.py", "files": {"graph.pb": {"size": 1234, "sha256": "<64 hex digits>"}, ...}}

train.py writes one into the model folder with each best checkpoint (the vocabularies and
checkpoints/best; not config.json, whose training keys may be edited: restore_best checks the
rest of it against checkpoints/best/config.json), export.py and freeze.py into their folders
(every file). The checkpoint, export and frozen loaders check it here; the C API
(inference/cc/tagger.cc) by the same rules, with the same messages: every listed file's size
first (in name order), then every digest. A folder written before folders kept one loads with a
one-line warning on stderr.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys

from ner import model_folder

WRITERS = ("train.py", "export.py", "freeze.py")
MAX_SIZE = 2**63 - 1  # sizes are int64 in tagger.cc
_HEX_DIGEST = re.compile("[0-9a-f]{64}")
# Every refusal of a manifest that is not what WRITERS write says this, in both runtimes.
_FORMAT = ('expected {"written_by": "train.py", "export.py" or "freeze.py", "files": {name: {"size": bytes, '
           '"sha256": 64 lowercase hex digits}}} with names relative to the folder; write the folder again')

# The digests of the files the last seal() hashed, by (path, inode, size, mtime): training seals the
# model folder with every best checkpoint, and hashes its unchanged vocabularies only once.
_digests: dict[tuple, str] = {}


def _digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def seal(folder: str, names: list[str], writer: str) -> None:
    """Writes folder's integrity manifest (atomically) listing `names`, paths relative to it."""
    global _digests
    files, digests = {}, {}
    for name in sorted(names):
        path = os.path.join(folder, name)
        status = os.stat(path)
        key = (os.path.realpath(path), status.st_ino, status.st_size, status.st_mtime_ns)
        digests[key] = _digests.get(key) or _digest(path)
        files[name] = {"size": status.st_size, "sha256": digests[key]}
    _digests = digests
    model_folder.write_text(os.path.join(folder, model_folder.INTEGRITY),
                            json.dumps({"written_by": writer, "files": files}, indent=1) + "\n")


def seal_model_folder(model_dir: str, checkpoint: str) -> None:
    """After the best checkpoint `checkpoint` (its path prefix) is saved: the vocabularies and what
    the checkpoint loader reads of checkpoints/best: its listing, the checkpoint's files and the
    config it was trained with (not what a killed write left, e.g. *.tempstate files)."""
    from ner.data.vocabulary import vocabulary_files
    meta = model_folder.read_json(os.path.join(model_dir, model_folder.VOCABULARY_META), "missing")
    best = os.path.join(model_dir, model_folder.BEST_CHECKPOINTS)
    prefix = re.escape(os.path.basename(checkpoint))
    checkpoint_files = [os.path.join(model_folder.BEST_CHECKPOINTS, name) for name in os.listdir(best)
                        if name == "checkpoint" or re.fullmatch(rf"{prefix}\.(index|data-\d+-of-\d+)", name)]
    seal(model_dir, vocabulary_files(meta["columns"]) + checkpoint_files + [model_folder.TRAINED_CONFIG], "train.py")


def seal_artifact(folder: str, writer: str) -> None:
    """An export or frozen folder, once its files are written: every file in it but the folder's
    own bookkeeping (names starting with a dot: its marker, temporary files)."""
    names = []
    for parent, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        names += [os.path.relpath(os.path.join(parent, name), folder).replace(os.sep, "/") for name in files
                  if not name.startswith(".") and name != model_folder.INTEGRITY]
    seal(folder, names, writer)


def unchecked_warning(folder: str, writer: str) -> str:
    return (f"{folder}: warning: no {model_folder.INTEGRITY}, so its files are not checked (written before folders "
            f"kept one); write it again with {writer} to add one")


def _well_formed(manifest) -> bool:
    """What tagger.cc's WellFormedIntegrity accepts."""
    if not (isinstance(manifest, dict) and manifest.get("written_by") in WRITERS
            and isinstance(manifest.get("files"), dict)):
        return False
    for name, entry in manifest["files"].items():
        try:
            name.encode("utf-8")  # an unpaired surrogate escape names no file
        except UnicodeEncodeError:
            return False
        if "\0" in name or name.startswith("/") or any(part in ("", ".", "..") for part in name.split("/")):
            return False
        if not (isinstance(entry, dict) and type(entry.get("size")) is int and 0 <= entry["size"] <= MAX_SIZE
                and isinstance(entry.get("sha256"), str) and _HEX_DIGEST.fullmatch(entry["sha256"])):
            return False
    return True


def read(path: str) -> dict:
    try:
        data = model_folder.read_json_text(path)
    except OSError as e:
        raise ValueError(f"{path}: cannot read ({e.strerror})") from None
    try:
        manifest = json.loads(data.decode("utf-8-sig"), parse_constant=lambda name: None)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError: nlohmann/json's parse errors
        manifest = None
    if not _well_formed(manifest):
        raise ValueError(f"{path}: {_FORMAT}")
    return manifest


def verify(folder: str, writer: str) -> None:
    """Checks the files folder's integrity manifest lists before a loader reads them: each one's
    size (all of them first: cheap), then each one's digest, and names the first that differs.
    writer: the command that writes such folders, named in the warning for a folder without one."""
    path = os.path.join(folder, model_folder.INTEGRITY)
    if not os.path.exists(path):
        print(unchecked_warning(folder, writer), file=sys.stderr, flush=True)
        return
    manifest = read(path)
    files = sorted(manifest["files"].items())
    fix = f"restore it, or write the folder again with {manifest['written_by']}"
    changed = f"the file changed since {manifest['written_by']} wrote it; {fix}"
    for name, entry in files:
        file_path = os.path.join(folder, name)
        try:
            status = os.stat(file_path)
        except (FileNotFoundError, NotADirectoryError):
            raise ValueError(f"{file_path}: missing, though {path} lists it; {fix}") from None
        except OSError as e:
            raise ValueError(f"{file_path}: cannot read ({e.strerror})") from None
        if not stat.S_ISREG(status.st_mode):
            raise ValueError(f"{file_path}: expected a regular file, as {path} lists it; {fix}")
        if status.st_size != entry["size"]:
            raise ValueError(f"{file_path}: {status.st_size} bytes, but {path} says {entry['size']}: {changed}")
    for name, entry in files:
        file_path = os.path.join(folder, name)
        try:
            digest = _digest(file_path)
        except OSError as e:
            raise ValueError(f"{file_path}: cannot read ({e.strerror})") from None
        if digest != entry["sha256"]:
            raise ValueError(f"{file_path}: its SHA-256 is not the one {path} lists: {changed}")
