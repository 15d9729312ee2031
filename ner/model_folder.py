"""A model folder's layout, in one place: every file name embvec.py, train.py, export.py and
freeze.py write, the atomic writes that make a reader see an old file or a complete new one, never
half of one, and `reading`, which turns any failure to read one of them into an error naming it.

Ownership: every folder these commands write goes through `writing`: it is new, empty, or marked
by the same command (MARKER; a folder from before the marker is recognised by its files) and
holds only files that command writes (check_writable names the first other one); its lock (LOCK,
an flock holding the writer's PID) admits one writer at a time; outputs are replaced file by
file (replace_files), never by removing or swapping the folder.

    MODEL_DIR/
        config.json                    the one config (ner/config.py)
        words.txt chars.txt entity_types.txt column<i>.txt embeddings.npy meta.json
                                       vocabularies (ner/data/vocabulary.py)
        checkpoints/best/              the model to use
        checkpoints/last/              the state to --resume
        history.jsonl                  one line per finished epoch
        integrity.json                 sizes and SHA-256 digests of the files loaders read (ner/integrity.py)
        .ner-folder .ner-lock          the marker (which command wrote the folder) and the lock
        logs/                          TensorBoard summaries
        export/                        SavedModel + serving.json + config.json (export.py)
        frozen/                        graph.pb + serving.json + config.json (freeze.py)
        onnx/                          model.onnx + serving.json + config.json + tokenizer.json + vocabularies
                                       but the embeddings (export.py --format onnx: ner/serving/onnx_export.py)
"""
from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Callable

from ner import paths

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
ONNX_DIR = "onnx"
ONNX_MODEL = "model.onnx"
TOKENIZER_PATTERNS = "tokenizer.json"  # in onnx/: ner.data.tokenizer.tokenizer_patterns(), read by ner/serving/text_tokens.py
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


def is_onnx(folder: str) -> bool:
    """By its model or its serving.json's "format", so that a missing model.onnx is reported by name
    (an ONNX folder also holds a serving.json: ask before is_frozen). A serving.json that cannot be
    read says nothing here: the frozen loader names what is wrong with it."""
    if os.path.exists(os.path.join(folder, ONNX_MODEL)):
        return True
    try:
        manifest = json.loads(read_json_text(os.path.join(folder, MANIFEST)))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and manifest.get("format") == "onnx"


def _temporary(path: str) -> str:
    """A fresh name beside `path` for writing it before the rename; _owned knows such leftovers."""
    return os.path.join(os.path.dirname(os.path.abspath(path)),
                        f".{os.path.basename(path)}.tmp-{os.getpid()}-{next(_temporaries)}")


_temporaries = itertools.count()


@contextlib.contextmanager
def replacing(path: str, mode: str = "w"):
    """A file open on a temporary name beside `path`, renamed to `path` when the block ends (a
    reader sees the old file or the whole new one) and removed when it fails."""
    tmp = _temporary(path)
    try:
        with open(tmp, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path: str, text: str) -> None:
    with replacing(path) as f:
        f.write(text)


def copy_file(source: str, path: str) -> None:
    with replacing(path, "wb") as f, open(source, "rb") as original:
        shutil.copyfileobj(original, f)


# --- ownership: which command wrote a folder, and which files it writes -----------------------

EMBVEC_KIND, TRAIN_KIND, EXPORT_KIND, FROZEN_KIND, ONNX_KIND = "embvec", "train", EXPORT_DIR, FROZEN_DIR, ONNX_DIR
COMMANDS = {EMBVEC_KIND: "embvec.py", TRAIN_KIND: "train.py", EXPORT_KIND: "export.py", FROZEN_KIND: "freeze.py",
            ONNX_KIND: "export.py --format onnx"}
STAGING = ".ner-staging-"  # an artifact is written here inside its folder, then moved file by file

_VOCABULARY = r"(words|chars|entity_types)\.txt|column\d+\.txt|embeddings\.npy|meta\.json"
# tf.train.CheckpointManager: ckpt-N_temp/ while writing, then ckpt-N.index and .data-* (each
# written as *.tempstate<N> first), then the `checkpoint` listing, through a checkpoint.tmp<hex> file.
_CHECKPOINT = (r"checkpoint(\.tmp[0-9a-f]+)?|ckpt-\d+\.(index|data-\d+-of-\d+)(\.tempstate\d+)?"
               r"|ckpt-\d+_temp/[^/]+")
_SHARED = r"config\.json|serving\.json|integrity\.json"
# The paths (relative, "/"-separated) each kind writes: every other file in its folder is foreign.
_WRITES = {
    EMBVEC_KIND: rf"{_VOCABULARY}",
    TRAIN_KIND: rf"{_VOCABULARY}|config\.json|integrity\.json|history\.jsonl|logs/events\.out\.tfevents\.[^/]+"
                rf"|checkpoints/(best|last)/({_CHECKPOINT})|checkpoints/best/config\.json",
    EXPORT_KIND: rf"{_SHARED}|saved_model\.pb|fingerprint\.pb|variables/variables\.(index|data-\d+-of-\d+)"
                 r"|assets/[^/]+",
    FROZEN_KIND: rf"{_SHARED}|graph\.pb",
    ONNX_KIND: rf"{_SHARED}|model\.onnx|tokenizer\.json|(words|chars|entity_types)\.txt|column\d+\.txt|meta\.json",
}
# The subfolders each kind makes (empty ones are fine).
_FOLDERS = {EMBVEC_KIND: r"", TRAIN_KIND: r"logs|checkpoints|checkpoints/(best|last)|checkpoints/(best|last)/ckpt-\d+_temp",
            EXPORT_KIND: r"variables|assets", FROZEN_KIND: r"", ONNX_KIND: r""}
# Folders of other kinds that a model folder holds; their own commands check them.
_NESTED = {TRAIN_KIND: (EXPORT_DIR, FROZEN_DIR, ONNX_DIR)}
# A model folder is also where users keep what they made with it (pred.txt, notes): train.py
# removes only files it writes, so in a folder it marked, other files stay and block no run.
_WORKSPACES = {TRAIN_KIND}
# How a folder written before the marker existed is recognised: it holds this file (and only
# files of its kind).
_EARLIER_SIGN = {EMBVEC_KIND: VOCABULARY_META, TRAIN_KIND: CONFIG, EXPORT_KIND: SAVED_MODEL, FROZEN_KIND: FROZEN_GRAPH,
                ONNX_KIND: ONNX_MODEL}


def _owned(kind: str, path: str) -> bool:
    """Whether `path` (relative to a folder of `kind`) is a file that kind writes: its own files,
    the marker and the lock, and what a killed write leaves (temporaries, a staging folder)."""
    name = os.path.basename(path)
    if path in (MARKER, LOCK) or path.startswith(STAGING):
        return True
    temporary = re.fullmatch(r"\.(.+)\.tmp-\d+-\d+", name)
    if temporary:
        path = os.path.join(os.path.dirname(path), temporary.group(1))
    return re.fullmatch(_WRITES[kind], path) is not None


def _contents(folder: str, kind: str) -> tuple[list[str], list[str]]:
    """-> (files, empty folders) below `folder`, relative, sorted, outside the kinds nested in it."""
    files, empty = [], []
    for parent, subfolders, names in os.walk(folder):
        relative = os.path.relpath(parent, folder)
        relative = "" if relative == "." else relative + "/"
        if not relative:
            subfolders[:] = [name for name in subfolders if name not in _NESTED.get(kind, ())]
        subfolders.sort()
        files += [relative + name for name in names]
        if relative and not names and not subfolders:
            empty.append(relative.rstrip("/"))
    return sorted(files), empty


def read_marker(folder: str) -> str | None:
    """The kind named by a folder's marker, or None when it has none."""
    path = os.path.join(folder, MARKER)
    if not os.path.exists(path):
        return None
    kind = read_json(path, "missing").get("kind")
    if kind not in COMMANDS:
        raise ValueError(f"{path}: names no kind of folder ({kind!r}); expected one of {', '.join(COMMANDS)}")
    return kind


def recognise(folder: str) -> str | None:
    """The kind of folder: by its marker, else (folders from before the marker) by its files."""
    kind = read_marker(folder)
    if kind is not None:
        return kind
    for kind, sign in _EARLIER_SIGN.items():
        if os.path.exists(os.path.join(folder, sign)) and not _foreign(folder, kind):
            return kind
    return None


def _foreign(folder: str, kind: str) -> str | None:
    """The first file or empty folder below `folder` that `kind` never writes."""
    files, empty = _contents(folder, kind)
    for path in files:
        if not _owned(kind, path):
            return path
    for path in empty:
        if not re.fullmatch(_FOLDERS[kind], path) and not path.startswith(STAGING):
            return path + "/"
    return None


def check_writable(folder: str, kind: str, flag: str) -> None:
    """A command of `kind` may write into `folder` only when it is new, empty, or a folder of the
    same kind (its marker, or for folders from before the marker, its files) holding only files
    that kind writes, or any files besides for a workspace kind that marked it. Otherwise one line
    naming the first foreign file."""
    paths.output_folder(folder, flag)
    if not os.path.isdir(folder) or not set(os.listdir(folder)) - {LOCK}:
        return
    command = COMMANDS[kind]
    marked = read_marker(folder)
    if marked is not None and marked != kind:
        raise ValueError(f"{folder}: {flag} is a folder {COMMANDS[marked]} wrote (says its {MARKER}), not "
                         f"{command}; give another folder")
    if marked == kind and kind in _WORKSPACES:
        return
    foreign = _foreign(folder, kind)
    if foreign is not None:
        other = recognise(folder) if marked is None else None
        written_by = f" (a folder {COMMANDS[other]} wrote)" if other not in (None, kind) else ""
        raise ValueError(f"{folder}: {flag} holds {foreign}{written_by}, which {command} never writes; give a new "
                         "or empty folder, or move that out yourself")
    if marked is None and not os.path.exists(os.path.join(folder, _EARLIER_SIGN[kind])):
        raise ValueError(f"{folder}: {flag} was not written by {command}: it has no {MARKER}, nor the "
                         f"{_EARLIER_SIGN[kind]} of a folder {command} wrote before the marker; give a new or "
                         "empty folder")


def check_output_file(path: str, flag: str) -> None:
    """An output file (inference.py's, Beam's) that a folder's own command wrote is refused: its
    folder's marker, in any folder above the file, says which files that command writes, and
    writing one of them would damage the model or the artifact (a pred.txt beside them is fine)."""
    paths.output_file(path, flag)
    if path == "-":
        return
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        kind = read_marker(folder) if os.path.isdir(folder) else None
        relative = os.path.relpath(os.path.abspath(path), folder).replace(os.sep, "/")
        if kind is not None and _owned(kind, relative):
            raise ValueError(f"{path}: {flag} is a file {COMMANDS[kind]} wrote into {folder}; writing it would damage "
                             "that folder: give another file")
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def mark(folder: str, kind: str) -> None:
    """Writes the marker (once): the folder is now `kind`'s to write."""
    if read_marker(folder) != kind:
        write_text(os.path.join(folder, MARKER), json.dumps({"kind": kind, "command": COMMANDS[kind]}) + "\n")


def remove_written(folder: str, kind: str, keep: Callable[[str], bool] = lambda path: False) -> None:
    """Removes the files `kind` writes below `folder` (not the marker or the lock, nor what `keep`
    says), then the subfolders left empty; nothing foreign is touched."""
    files, _ = _contents(folder, kind)
    for path in files:
        if path not in (MARKER, LOCK) and _owned(kind, path) and not keep(path):
            os.remove(os.path.join(folder, path))
    for parent, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        relative = os.path.relpath(parent, folder)
        if relative != "." and (re.fullmatch(_FOLDERS[kind], relative) or relative.startswith(STAGING)):
            with contextlib.suppress(OSError):  # not empty: it holds something to keep
                os.rmdir(parent)


def replace_files(folder: str, kind: str, fill: Callable[[str], None]) -> None:
    """Calls fill(staging) on a staging folder inside `folder` (writable, checked and marked by the
    caller), then moves each file it wrote to its place (rename: a reader sees the old file or the
    new one) and removes the files of `kind` that the new output no longer has. The folder itself
    is never removed or swapped, so nothing else in it is lost."""
    staging = tempfile.mkdtemp(prefix=STAGING, dir=folder)
    try:
        fill(staging)
        written, _ = _contents(staging, kind)
        for path in written:
            target = os.path.join(folder, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.replace(os.path.join(staging, path), target)
        remove_written(folder, kind, keep=set(written).__contains__)
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # our own temporary folder


# --- one writer per folder ------------------------------------------------------------------

@contextlib.contextmanager
def locked(folder: str, command: str, flag: str):
    """Holds an exclusive lock (flock on LOCK inside `folder`, which holds the PID and the command)
    for the block; a second writer is refused at once, naming the holder. The kernel releases the
    lock of a process that dies, so a lock left by a killed run is simply taken over."""
    path = os.path.join(folder, LOCK)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").split()
            os.close(fd)
            pid, holder_command = (holder + ["?", "another command"])[:2]
            raise ValueError(f"{folder}: {flag}: {holder_command} (PID {pid}) is writing this folder; wait until it "
                             "ends, or give another folder") from None
        # The holder before us may have removed the folder's lock file (and the folder) as we opened it.
        if os.path.exists(path) and os.path.samestat(os.fstat(fd), os.stat(path)):
            break
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        yield
    finally:
        os.ftruncate(fd, 0)  # the folder's bytes stay as they were before the command
        os.close(fd)


@contextlib.contextmanager
def writing(folder: str, kind: str, flag: str):
    """What every command that writes a folder goes through: checks that it may write `folder`
    (check_writable), makes it, takes its lock, checks again under the lock, marks it, and yields
    whether it made the folder. A failure removes the folder it made when nothing but the marker
    and the lock is left in it (the caller removes what it wrote)."""
    check_writable(folder, kind, flag)
    os.makedirs(os.path.dirname(os.path.abspath(folder)), exist_ok=True)
    try:
        os.mkdir(folder)
        made = True
    except FileExistsError:
        made = False
    try:
        with locked(folder, COMMANDS[kind], flag):
            marked_now = read_marker(folder) is None
            try:
                check_writable(folder, kind, flag)
                mark(folder, kind)
                yield made
            except BaseException:
                # Nothing of the output left: the marker (and the lock) go too when this run wrote them.
                if marked_now and set(os.listdir(folder)) <= {MARKER, LOCK}:
                    for name in os.listdir(folder):
                        os.remove(os.path.join(folder, name))
                    if made:
                        os.rmdir(folder)
                raise
    except BaseException:
        if made and os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)
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


# The bounds of the JSON files loaders read (serving.json, integrity.json), the same in tagger.cc.
MAX_JSON_BYTES = 1 << 20      # tagger.cc's kMaxManifestBytes
MAX_JSON_DEPTH = 64           # containers nested in one another: tagger.cc's kMaxManifestDepth
MAX_NUMBER_CHARS = 100        # tagger.cc's kMaxNumberChars: a double never needs more than 24

# What check_json_text looks at: a string (skipped whole, to its closing quote or the end), a
# bracket, or a number: a run of number characters that starts with a digit or a minus sign.
_JSON_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[{]|[\]}]|[-0-9][-+.0-9eE]*', re.DOTALL)
_JSON_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")


def check_json_text(data: bytes, path: str) -> None:
    """The bounds of a JSON file that the loaders read, checked on its bytes before it is parsed, by
    the rule of tagger.cc's CheckJsonText (which scans the same tokens), so that both runtimes
    refuse with the same message where their parsers would differ (Python's json recurses into
    RecursionError and refuses long integers in its own words, nlohmann/json in its own):
    containers nested at most MAX_JSON_DEPTH deep, and numbers of at most MAX_NUMBER_CHARS
    characters within a double's range. The first violation in the text is named."""
    depth = 0
    for match in _JSON_TOKENS.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"{path}: expected JSON nested at most {MAX_JSON_DEPTH} levels deep")
        elif token in (b"]", b"}"):
            depth = max(depth - 1, 0)
        elif token[:1] != b'"':
            if len(token) > MAX_NUMBER_CHARS:
                raise ValueError(f"{path}: expected numbers of at most {MAX_NUMBER_CHARS} characters, "
                                 f"found one of {len(token)}")
            if _JSON_NUMBER.fullmatch(token) and math.isinf(float(token)):
                raise ValueError(f"{path}: expected numbers within a double's range, found {token.decode()}")


def read_json_text(path: str) -> bytes:
    """The bytes of a JSON file that the loaders read, at most MAX_JSON_BYTES and within
    check_json_text's bounds."""
    with open(path, "rb") as f:
        data = f.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{path}: expected at most {MAX_JSON_BYTES} bytes")
    check_json_text(data, path)
    return data


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
