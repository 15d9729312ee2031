"""Process-wide TensorFlow settings: thread pools are capped as asked, and only as asked."""
import subprocess
import sys

import pytest

import train
from conftest import ROOT
from ner import tf_options

POOL_SIZES = ("import sys; from ner import tf_options; tf_options.limit_threads(int(sys.argv[1])); import tensorflow as tf; "
              "print(tf.config.threading.get_intra_op_parallelism_threads(), "
              "tf.config.threading.get_inter_op_parallelism_threads())")


@pytest.mark.parametrize("threads, expected", [(1, "1 1"), (0, "0 0")])  # 0: TensorFlow's own choice
def test_limit_threads_sets_both_pools(threads, expected):
    done = subprocess.run([sys.executable, "-c", POOL_SIZES, str(threads)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[-2] == expected


def test_negative_threads_are_refused():
    with pytest.raises(ValueError, match="threads=-2"):
        tf_options.limit_threads(-2)


def test_train_reports_a_bad_thread_count(corpus_dir, emb_dir, tmp_path):
    with pytest.raises(SystemExit, match="threads=-1: expected 0"):
        train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m"),
                    "--threads", "-1"])
