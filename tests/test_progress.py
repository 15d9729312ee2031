"""Progress bars (ner/progress.py): drawn on a terminal, even one that reports no window size (a pty
left at 0x0, as under some CI runners), and never into a pipe."""
import os
import subprocess
import sys

from conftest import ROOT, TINY_CONFIG


def stderr_on_sizeless_terminal(command: list[str]) -> str:
    """What `command` writes to its stderr, a pty whose window size is 0x0."""
    master, slave = os.openpty()
    assert os.get_terminal_size(slave) == (0, 0)  # no TIOCSWINSZ: the terminal of the bug
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave, cwd=ROOT)
    os.close(slave)
    written = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the pty
            break
        if not chunk:
            break
        written += chunk
    os.close(master)
    assert process.wait() == 0, written.decode(errors="replace")
    return written.decode(errors="replace")


def test_training_draws_the_epoch_and_dev_bars_on_a_terminal_without_size(corpus_dir, emb_dir, tmp_path):
    written = stderr_on_sizeless_terminal(
        [sys.executable, "train.py", "--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir",
         str(tmp_path / "run"), "--epochs", "1"] + TINY_CONFIG)
    assert "epoch 1/1: 100%" in written  # the epoch's bar, left on screen
    assert "epoch 1/1 dev:" in written  # the bar while dev is tagged
    assert "/200 [" in written and "/60 [" in written  # train's and dev's sentences
    assert "\repoch 1: loss " in written  # the log line, over the dev bar it cleared


def test_inference_draws_its_bar_on_a_terminal_without_size(model_dir, corpus_dir, tmp_path):
    written = stderr_on_sizeless_terminal(
        [sys.executable, "inference.py", "--model_dir", model_dir, "--input", os.path.join(corpus_dir, "dev.txt"),
         "--output", str(tmp_path / "pred.txt")])
    assert "tagging:" in written and "/60 [" in written


def test_inference_draws_no_bar_into_a_pipe(model_dir, corpus_dir, tmp_path):
    done = subprocess.run([sys.executable, "inference.py", "--model_dir", model_dir, "--input",
                           os.path.join(corpus_dir, "dev.txt"), "--output", str(tmp_path / "pred.txt")],
                          capture_output=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    assert b"tagging" not in done.stderr and b"\r" not in done.stderr
