"""Process-wide TensorFlow settings, made by the command-line tools before TensorFlow loads or runs."""
from __future__ import annotations

import atexit
import io
import logging
import os
import re
import signal
import subprocess
import sys


def prefer_plain_cpu_kernels() -> None:
    """Turns TensorFlow's oneDNN kernels off unless the environment already chose
    (TF_ENABLE_ONEDNN_OPTS). They pay a set-up cost per call that serving never earns back: one
    sentence at a time on the CoNLL-2003 test set, one thread, the median sentence took 15% longer
    with them, and batch tagging was no faster (experiments/RESULTS.md). TensorFlow reads the
    variable once, when it loads, so this must run before the first import of tensorflow."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def limit_threads(threads: int) -> None:
    """Gives TensorFlow's intra-op and inter-op pools `threads` threads each (0: TensorFlow's
    default, one per core). For trainings that share the cores: with more threads than their share,
    a pool's threads wait on siblings that another process has descheduled (two trainings on 2
    cores: 176 s with one thread each against 231 s, experiments/RESULTS.md). Must run before
    TensorFlow's first op."""
    if threads < 0:
        raise ValueError(f"threads={threads}: expected 0 (TensorFlow's default) or more")
    if threads:
        import tensorflow as tf
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


# TensorFlow's own log lines on stderr. Its C++ code (and every copy of absl that TensorFlow and
# its op libraries link, each with its own settings) writes lines such as
#   I0000 00:00:1796528844.495543   28874 port.cc:153] oneDNN custom operations are on. ...
# and, from a copy used before it is initialized, the line _ABSL_PRE_INIT; TF_CPP_MIN_LOG_LEVEL
# reaches neither. Its Python side writes `WARNING:tensorflow:...` (and absl's `WARNING:absl:...`).
# A fatal line (F...) passes: the reason a process aborts is never hidden.
_LOG_HEADER = re.compile(rb"[IWE]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] |(?:DEBUG|INFO|WARNING|ERROR):(?:tensorflow|absl):")
_FATAL_HEADER = re.compile(rb"F\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] ")
_ABSL_PRE_INIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_READ_SIZE = 1 << 16  # at least one packet of a packet-mode pipe (PIPE_BUF)
# How long a command, as it exits, waits for the filter to pass on what is still in the pipe
# (all of it, unless a process the command started still holds the pipe open after it).
_DRAIN_SECONDS = 5

_filter: subprocess.Popen | None = None


def filter_log_lines(source: int, sink: int) -> None:
    """Copies what arrives on file descriptor `source` to `sink` without TensorFlow's log lines, until
    end of file. Bytes go through as they arrive (a progress bar's partial line with it), undecoded.
    A log message is one write, and a read of log_pipe()'s pipe returns one write (up to 4 KiB), so
    its continuation lines (the lines after its header in the same read) are dropped with it; a
    longer message is dropped until a read ends at a line's end."""
    dropping = False  # inside a log message
    line_start = True  # the next byte starts a line
    while chunk := os.read(source, _READ_SIZE):
        kept = bytearray()
        start = 0
        while start < len(chunk):
            newline = chunk.find(b"\n", start)
            end = len(chunk) if newline < 0 else newline + 1
            if line_start:
                if _LOG_HEADER.match(chunk, start) or chunk.startswith(_ABSL_PRE_INIT, start):
                    dropping = True
                elif _FATAL_HEADER.match(chunk, start):
                    dropping = False
            if not dropping:
                kept += chunk[start:end]
            line_start = newline >= 0
            start = end
        if chunk.endswith(b"\n"):
            dropping = False
        if kept:
            try:
                _write_all(sink, kept)
            except OSError:  # sink closed (`2>&1 | head`): keep reading, so that writers never block
                pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def log_pipe() -> tuple[int, int]:
    """-> (read end, write end) of a pipe in packet mode where the system has one (Linux): each
    write of up to PIPE_BUF (4 KiB) bytes is one read, so writes that arrive together stay apart
    and a line of ours never passes for the continuation of a log message written just before it."""
    try:
        return os.pipe2(os.O_DIRECT)
    except (AttributeError, OSError):  # no packet mode here: writes that arrive together are one read
        return os.pipe()


def quiet_logs() -> None:
    """Keeps TensorFlow's own log lines (C++ and Python) off stderr; the process's other output stays.
    Call once per command process, before TensorFlow loads.

    TF_CPP_MIN_LOG_LEVEL and the Python loggers' levels stop what they reach at its source. The
    rest (absl's lines that ignore the variable, from each of its copies) are filtered: file
    descriptor 2 becomes a pipe read by a small filter process that passes everything but log lines
    on to the original stderr, and Python's sys.stderr writes to the original directly, so the
    command's own messages, tracebacks and progress bars are not delayed. A process rather than a
    thread, so that a fatal line written just before an abort still gets through, and so does the
    output of child processes, which inherit the pipe. Nothing changes in a process that already
    loaded TensorFlow, or whose sys.stderr is not its own (a test runner capturing it, a notebook)."""
    global _filter
    if _filter is not None or "tensorflow" in sys.modules or sys.stderr is None or sys.stderr is not sys.__stderr__:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        original = os.dup(2)
    except OSError:  # no stderr at all
        return
    read_end, write_end = log_pipe()
    try:
        _filter = subprocess.Popen([sys.executable, "-I", "-S", os.path.abspath(__file__)],
                                   stdin=read_end, stdout=original)
    except OSError:
        os.close(original)
        os.close(write_end)
        return
    finally:
        os.close(read_end)
    sys.stderr.flush()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = _text_stream_like(sys.stderr, original)
    atexit.register(_drain, original, os.getpid())


def _text_stream_like(stream, fd: int):
    """A text stream on `fd` that encodes and buffers as `stream` does (with python -u, not at all)."""
    unbuffered = isinstance(getattr(stream, "buffer", None), io.RawIOBase)
    binary = open(fd, "wb", buffering=0 if unbuffered else -1, closefd=False)
    return io.TextIOWrapper(binary, encoding=stream.encoding, errors=stream.errors,
                            line_buffering=stream.line_buffering, write_through=stream.write_through)


def _drain(original: int, owner: int) -> None:
    """At exit: gives fd 2 back to the original stderr (closing this process's end of the pipe) and
    waits for the filter to pass on what is left."""
    if os.getpid() != owner:  # a forked child exiting through Python: the filter is its parent's
        return
    sys.stderr.flush()
    os.dup2(original, 2)
    try:
        _filter.wait(_DRAIN_SECONDS)
    except subprocess.TimeoutExpired:  # a child still holds the pipe; the filter ends when it does
        pass


if __name__ == "__main__":  # the filter process of quiet_logs; Ctrl-C is for the command, not for it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    filter_log_lines(0, 1)
