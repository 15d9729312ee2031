"""The one maker of progress bars (training epochs, dev scoring, tagging, reading vectors): a tqdm
bar on stderr, drawn only when asked for and stderr is a terminal."""
from __future__ import annotations

import os
import sys
from collections.abc import Iterable

from tqdm import tqdm

# What a terminal that reports no size (a pty left at 0x0, as under some CI `script` runs) is taken
# to be: tqdm would otherwise take its width as -1 and draw nothing.
FALLBACK_SIZE = os.terminal_size((80, 24))


def progress_bar(description: str, unit: str, total: int | None = None, iterable: Iterable | None = None,
                 show: bool = True, leave: bool = True, mininterval: float = 0.1) -> tqdm:
    """A bar counting `unit` (" sentences", " lines") up to `total`, or over `iterable`. It draws
    only when show is true and stderr is a terminal (tqdm's disable=None); otherwise it draws nothing."""
    stream = sys.stderr
    return tqdm(iterable, total=total, desc=description, unit=unit, file=stream, disable=None if show else True,
                leave=leave, mininterval=mininterval, **_shape_of_sizeless_terminal(stream))


def _shape_of_sizeless_terminal(stream) -> dict:
    """tqdm's ncols and nrows for a terminal that reports a width or height of 0 (from FALLBACK_SIZE);
    nothing (tqdm asks the terminal itself) for any other stream."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):  # not a terminal, or a stream without a descriptor
        return {}
    if size.columns > 0 and size.lines > 0:
        return {}
    columns = size.columns if size.columns > 0 else FALLBACK_SIZE.columns
    lines = size.lines if size.lines > 0 else FALLBACK_SIZE.lines
    return {"ncols": columns - 1, "nrows": lines - 1}  # as tqdm does: the last column and row stay free
