"""Process-wide TensorFlow settings, made by the command-line tools before TensorFlow loads or runs."""
import os


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


def quiet_logs() -> None:
    """Keeps TensorFlow's own log lines (C++ and Python) off stderr; the command's messages stay."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
