"""Quiet by default: no command prints TensorFlow's own log lines (its C++ absl/TSL lines, absl's
pre-init line, its Python-side warnings) unless --verbose or NER_VERBOSE=1 asks for them, and
everything else a command writes to stderr still gets there (tf_options.quiet_logs)."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import urllib.request

import pytest

from conftest import ROOT, TINY_CONFIG, write_glove
from ner import tf_options

# A line of TensorFlow's logging, in any of its forms, as a user sees it.
TF_LOG_LINE = re.compile(rb"^[IWEF]\d{4} \d\d:\d\d:\d+\.\d+ +\d+ \S+:\d+\] |WARNING:tensorflow|oneDNN|absl::InitializeLog",
                         re.M)


def command_env(**extra) -> dict:
    """The environment of a user who set nothing: no TF_CPP_MIN_LOG_LEVEL (conftest sets one for
    the tests' own process), no TF_ENABLE_ONEDNN_OPTS, no NER_VERBOSE."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS", "NER_VERBOSE")}
    return dict(env, **extra)


def run_command(script: str, *args: str, stdin: bytes = b"", **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args], input=stdin, capture_output=True,
                          env=command_env(**env), cwd=ROOT)


# --- the filter itself: chunks in, bytes out -------------------------------------------------

def filtered(*writes: bytes) -> bytes:
    """What filter_log_lines passes on when `writes` arrive through quiet_logs' pipe, one write each."""
    source, writer = tf_options.log_pipe()
    read_end, sink = os.pipe()
    out = []
    reader = threading.Thread(target=lambda: out.append(b"".join(iter(lambda: os.read(read_end, 1 << 16), b""))))
    reader.start()
    worker = threading.Thread(target=tf_options.filter_log_lines, args=(source, sink))
    worker.start()
    for data in writes:
        os.write(writer, data)
    os.close(writer)
    worker.join()
    for fd in (source, sink):
        os.close(fd)
    reader.join()
    os.close(read_end)
    return out[0]


PRE_INIT = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = (b"I0000 00:00:1796528844.495543   28874 port.cc:153] oneDNN custom operations are on. You may see "
          b"slightly different numerical results.\n")
CPU_FEATURES = (b"I0000 00:00:1796528844.573883   28874 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
                b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n")
INT32 = b"E1206 03:47:21.123456   29025 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512.\n"
PYTHON_WARNING = (b"WARNING:tensorflow:Issue encountered when serializing table_initializer.\n"
                  b"Type is unsupported, or the types of the items don't match field type in CollectionDef.\n")


def test_tensorflow_log_messages_are_dropped_whole():
    assert filtered(PRE_INIT, ONEDNN, CPU_FEATURES, INT32, PYTHON_WARNING) == b""
    assert filtered(b"ours\n", PRE_INIT + ONEDNN, b"also ours\n", CPU_FEATURES, b"last\n") == b"ours\nalso ours\nlast\n"


def test_everything_else_passes_unchanged():
    binary = bytes(range(256)) + b"\n"  # not UTF-8
    long_line = [b"x" * 50000] * 20 + [b"\n"]  # 1 MB
    progress = [b"\r  10%|#", b"     |", b"\r 100%|##########|\n"]
    traceback = b'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad\n'
    chunks = [binary, *long_line, *progress, traceback, b"I think so\n", b"no newline at the end"]
    assert filtered(*chunks) == b"".join(chunks)


def test_a_fatal_line_passes_with_its_continuation():
    fatal = b"F0000 00:00:1796528844.5 28874 op_kernel.cc:1] Check failed: size >= 0\n*** Check failure stack trace: ***\n"
    assert filtered(INT32, fatal) == fatal


def test_only_a_line_start_can_begin_a_log_message():
    # A partial line forwarded, then the rest of it, which merely looks like a log header.
    assert filtered(b"progress ", ONEDNN) == b"progress " + ONEDNN


def test_a_log_message_longer_than_one_read_is_dropped_to_its_end():
    cut = INT32.index(b"oneDNN") + 3  # the first read holds the header, as a message of 64 KiB or more does
    assert filtered(INT32[:cut], INT32[cut:] + b"its second line\n", b"ours\n") == b"ours\n"


def test_partial_output_is_passed_on_before_the_line_ends():
    """A progress bar's \\r updates reach stderr while the writer is still writing its line."""
    source, writer = tf_options.log_pipe()
    read_end, sink = os.pipe()
    worker = threading.Thread(target=tf_options.filter_log_lines, args=(source, sink))
    worker.start()
    os.write(writer, b"\r 42%|####")
    assert os.read(read_end, 100) == b"\r 42%|####"  # would wait forever if held back
    os.close(writer)
    worker.join()
    for fd in (source, sink, read_end):
        os.close(fd)


# --- quiet_logs in a process, through ner.cli.parse_args -------------------------------------

CHILD = ("import sys; sys.stderr.write('W0000 00:00:1.5 77 child.cc:1] a child logs\\n'); sys.stderr.flush(); "
         "sys.stderr.write('the child says hello\\n')")
PROCESS = f"""
import argparse, os, subprocess, sys
sys.path.insert(0, {ROOT!r})
from ner import cli
cli.parse_args(argparse.ArgumentParser(), sys.argv[1:])
sys.stderr.write("before tensorflow\\n")  # one write: the filter's output may come between two
import tensorflow as tf
print(int(tf.constant(1) + 1))
tf.get_logger().warning("from tensorflow's python side")
subprocess.run([sys.executable, "-c", {CHILD!r}])
os.write(2, b"\\xff\\xfe not UTF-8, straight to fd 2\\r")
sys.stderr.write("after tensorflow\\n")
"""


@pytest.fixture(scope="module")
def process_runs(tmp_path_factory):
    """The script PROCESS run as a command is run: quiet, and asked for TensorFlow's lines."""
    script = tmp_path_factory.mktemp("quiet") / "process.py"
    script.write_text(PROCESS)
    cases = {"quiet": ([], {}), "--verbose": (["--verbose"], {}), "NER_VERBOSE=1": ([], {"NER_VERBOSE": "1"}),
             "NER_VERBOSE=0": ([], {"NER_VERBOSE": "0"})}
    return {name: subprocess.run([sys.executable, str(script), *flags], capture_output=True, env=command_env(**env))
            for name, (flags, env) in cases.items()}


@pytest.mark.parametrize("case", ["quiet", "NER_VERBOSE=0"])
def test_quiet_logs_keeps_tensorflow_lines_off_and_the_rest_on(process_runs, case):
    done = process_runs[case]
    assert done.returncode == 0 and done.stdout == b"2\n", done.stderr.decode(errors="replace")
    assert TF_LOG_LINE.findall(done.stderr) == [] and b"a child logs" not in done.stderr
    for ours in (b"before tensorflow\n", b"after tensorflow\n", b"the child says hello\n",
                 b"\xff\xfe not UTF-8, straight to fd 2\r"):
        assert ours in done.stderr


@pytest.mark.parametrize("case", ["--verbose", "NER_VERBOSE=1"])
def test_verbose_shows_tensorflow_lines(process_runs, case):
    done = process_runs[case]
    assert done.returncode == 0 and done.stdout == b"2\n"
    assert b"WARNING:tensorflow:from tensorflow's python side" in done.stderr
    assert re.search(rb"^I\d{4} .*\] oneDNN custom operations are on", done.stderr, re.M)
    assert b"a child logs" in done.stderr and b"after tensorflow" in done.stderr


def test_a_fatal_line_reaches_stderr_though_the_process_aborts(tmp_path):
    script = tmp_path / "abort.py"
    script.write_text(f"""
import argparse, os, sys
sys.path.insert(0, {ROOT!r})
from ner import cli
cli.parse_args(argparse.ArgumentParser(), [])
os.write(2, b"W0000 00:00:1.5 77 x.cc:1] dropped\\n")
os.write(2, b"F0000 00:00:1.5 77 x.cc:2] Check failed: the reason\\n")
os.abort()
""")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, env=command_env())
    assert done.returncode == -signal.SIGABRT
    assert done.stderr == b"F0000 00:00:1.5 77 x.cc:2] Check failed: the reason\n"


# --- every command, as a user runs it ---------------------------------------------------------

@pytest.fixture(scope="module")
def command_runs(corpus_dir, tmp_path_factory):
    """Each command once, chained from a GloVe file to a served model, in an environment that
    silences nothing: name -> its CompletedProcess."""
    from ner.data.conll import read_conll
    work = tmp_path_factory.mktemp("commands")
    words = sorted({w.lower() for s in read_conll(os.path.join(corpus_dir, "train.txt")) for w in s.words})
    write_glove(str(work / "glove.txt"), words)
    model = str(work / "model")
    test = os.path.join(corpus_dir, "test.txt")
    runs = {"embvec.py": run_command("embvec.py", "--data_dir", corpus_dir, "--emb", str(work / "glove.txt"),
                                     "--out", str(work / "emb"))}
    runs["train.py"] = run_command("train.py", "--data_dir", corpus_dir, "--emb_dir", str(work / "emb"), "--model_dir",
                                   model, "--epochs", "1", "--seed", "7", *TINY_CONFIG)
    runs["inference.py"] = run_command("inference.py", "--model_dir", model, "--input", test, "--output",
                                       str(work / "pred.txt"))
    runs["inference.py --format text"] = run_command("inference.py", "--model_dir", model, "--input", "-", "--format",
                                                     "text", stdin=b"Anna lives in Lisbon\n")
    runs["export.py"] = run_command("export.py", "--model_dir", model)
    runs["freeze.py"] = run_command("freeze.py", "--model_dir", model)
    runs["freeze.py --verbose"] = run_command("freeze.py", "--model_dir", model, "--out", str(work / "frozen2"),
                                              "--verbose")
    runs["beam_tag.py"] = run_command("beam_tag.py", "--model_dir", model, "--input", test, "--output",
                                      str(work / "beam"))
    runs["etc/conlleval.py"] = run_command("etc/conlleval.py", str(work / "pred.txt"))
    runs["serve.py"] = serve_once(os.path.join(model, "frozen"))
    return runs


def serve_once(model_dir: str) -> subprocess.CompletedProcess:
    """serve.py started, asked for /health, stopped by SIGINT: its exit status and output."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, os.path.join(ROOT, "serve.py"), "--model_dir", model_dir, "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=command_env(), cwd=ROOT)
    stderr = []
    for line in process.stderr:  # until the line that says it listens
        stderr.append(line)
        if b"serving" in line:
            break
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/health") as response:
        assert response.status == 200
    process.send_signal(signal.SIGINT)
    stdout, rest = process.communicate()
    return subprocess.CompletedProcess(command, process.returncode, stdout, b"".join(stderr) + rest)


COMMANDS = ["embvec.py", "train.py", "inference.py", "inference.py --format text", "export.py", "freeze.py",
            "beam_tag.py", "etc/conlleval.py", "serve.py"]


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_prints_tensorflow_log_lines(command_runs, command):
    done = command_runs[command]
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert TF_LOG_LINE.findall(done.stderr) == [], done.stderr.decode(errors="replace")


def test_verbose_shows_tensorflow_lines_and_freezing_warns_of_nothing(command_runs):
    """--verbose is the test that the quiet commands above could fail; freezing's own warning
    (a table_initializer collection it could not serialize) is gone at its source."""
    done = command_runs["freeze.py --verbose"]
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert TF_LOG_LINE.search(done.stderr)
    assert b"Issue encountered when serializing" not in done.stderr
