"""Process-wide TensorFlow settings, made by the command-line tools before TensorFlow loads."""
import os


def prefer_plain_cpu_kernels() -> None:
    """Turns TensorFlow's oneDNN kernels off unless the environment already chose
    (TF_ENABLE_ONEDNN_OPTS). They pay a set-up cost per call that serving never earns back: one
    sentence at a time on the CoNLL-2003 test set, one thread, the median sentence took 15% longer
    with them, and batch tagging was no faster (experiments/RESULTS.md). TensorFlow reads the
    variable once, when it loads, so this must run before the first import of tensorflow."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
