"""The serving install without TensorFlow (requirements-serving.txt, then the package with --no-deps,
as docs/serving.md says): a fresh venv tags CoNLL and raw text from an ONNX folder with the bytes
the checkpoint gives in the full install, and runs the service."""
import json
import os
import signal
import socket
import subprocess
import tomllib
import urllib.request

import pytest
from test_commands import run as run_checkout
from test_packaging import package_source_and_venv, pip_install, requirements, venv_environment, venv_runner

from conftest import ROOT

# Raw text, a sentence a line: accents (composed and combining), CJK, a quote and punctuation to split off.
TEXT = ("Anna Schmidt lives in Lisbon\n"
        "Ngũgĩ wa Thiong'o spoke at Makerere University in Kampala.\n"
        "Zu\u0308rich, 東京 and São Paulo!\n")
# The service's answers wait at most this long (seconds) before the test gives up.
HANG_GUARD = 60


def test_the_serving_requirements_are_pyproject_pins_without_tensorflow():
    """The same versions as the full install's, so that both tag with what was tested; none of the
    packages that only training, export or Beam need."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        pins = tomllib.load(f)["project"]["dependencies"]
    serving = requirements("requirements-serving.txt")
    assert serving and set(serving) <= set(pins), set(serving) - set(pins)
    names = {requirement.partition("==")[0].lower().replace("_", "-") for requirement in serving}
    assert not names & {"tensorflow", "tensorflow-cpu", "tensorflow-text", "tensorboard", "apache-beam", "pyarrow",
                        "tf2onnx", "onnx", "h5py"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tagged_sentences(text_output: str) -> list[list[list[str]]]:
    """Text-mode output (a token and its tag a line, a blank line after each sentence) -> per sentence [token, tag]s."""
    return [[line.split() for line in block.splitlines()] for block in text_output.strip().split("\n\n")]


@pytest.mark.install
def test_a_venv_without_tensorflow_tags_and_serves_from_the_onnx_folder(model_dir, corpus_dir, tmp_path):
    """About 30 s here, half of it pip's; 50 s with no pip cache (PIP_NO_CACHE_DIR=1)."""
    source, venv = package_source_and_venv(tmp_path)
    pip_install(venv, "-r", os.path.join(ROOT, "requirements-serving.txt"))
    run = venv_runner(venv, tmp_path / "work")
    # Checked before the package goes in: its metadata lists the full install, which --no-deps leaves out.
    run("python", "-m", "pip", "check")
    pip_install(venv, "--no-deps", source)
    absent = run("python", "-c", "try:\n    import tensorflow\nexcept ModuleNotFoundError as error:\n    print(error.name)")
    assert absent.stdout == "tensorflow\n"

    onnx_dir = str(tmp_path / "onnx")
    exported = run_checkout("export.py", "--model_dir", model_dir, "--format", "onnx", "--out", onnx_dir)
    assert exported.returncode == 0, exported.stderr.decode()
    text_file = tmp_path / "text.txt"
    text_file.write_text(TEXT, encoding="utf-8")
    for fmt, source_file in (("conll", os.path.join(corpus_dir, "test.txt")), ("text", str(text_file))):
        reference, served = tmp_path / f"checkpoint.{fmt}", tmp_path / f"onnx.{fmt}"
        done = run_checkout("inference.py", "--model_dir", model_dir, "--input", source_file, "--format", fmt,
                            "--output", reference)
        assert done.returncode == 0, done.stderr.decode()
        done = run("ner-inference", "--model_dir", onnx_dir, "--input", source_file, "--format", fmt, "--output", served)
        assert done.stderr == ""
        assert served.read_bytes() == reference.read_bytes(), fmt
    # The checkpoint itself needs TensorFlow: one line that says so, no traceback.
    refused = subprocess.run([os.path.join(venv, "bin", "ner-inference"), "--model_dir", model_dir, "--input",
                              str(text_file), "--format", "text"], capture_output=True, text=True, cwd=tmp_path / "work",
                             env=venv_environment(), timeout=60)
    assert refused.returncode == 1 and len(refused.stderr.splitlines()) == 1 and "tensorflow" in refused.stderr, refused
    expected = tagged_sentences((tmp_path / "checkpoint.text").read_text(encoding="utf-8"))

    port = free_port()
    process = subprocess.Popen([os.path.join(venv, "bin", "ner-serve"), "--model_dir", onnx_dir, "--port", str(port)],
                               stderr=subprocess.PIPE, text=True, cwd=tmp_path / "work", env=venv_environment())
    try:
        log = []
        for line in process.stderr:  # waits for the line that says it listens
            log.append(line)
            if "serving" in line:
                break
        assert process.poll() is None, "".join(log)
        url = f"http://127.0.0.1:{port}"
        with urllib.request.urlopen(url + "/health", timeout=HANG_GUARD) as response:
            assert json.load(response)["status"] == "ok"
        request = urllib.request.Request(url + "/tag", data=json.dumps({"text": TEXT.splitlines()}).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=HANG_GUARD) as response:
            answers = json.load(response)["sentences"]
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(HANG_GUARD) == 0
    assert [[list(pair) for pair in zip(a["tokens"], a["tags"], strict=True)] for a in answers] == expected
