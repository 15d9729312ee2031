"""Checks of the paths a command is given, made before any work starts: a wrong path is one line
that names it, never a traceback halfway through (or after) the work."""
from __future__ import annotations

import os


def input_file(path: str, flag: str) -> None:
    """An existing file to read ('-' is stdin)."""
    if path == "-":
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: {flag}: file not found")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: {flag}: is a folder, expected a file")


def input_folder(path: str, flag: str) -> None:
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: {flag}: folder not found")
    if not os.path.isdir(path):
        raise NotADirectoryError(f"{path}: {flag}: is a file, expected a folder")


def output_file(path: str, flag: str) -> None:
    """A file that can be written ('-' is stdout): its folder exists and it is not a folder."""
    if path == "-":
        return
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: {flag}: is a folder, expected a file")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"{path}: {flag}: its folder {parent} does not exist")


def output_folder(path: str, flag: str) -> None:
    """A folder to create or fill: not an existing file."""
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path}: {flag}: is a file, expected a folder")


def inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies below it, links resolved."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
