"""Writing files and folders so that a reader sees the old version or the complete new one,
never half of one (an interrupted run, a full disk, a crash)."""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable


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
