"""train.py --strategy: MirroredStrategy over 2 logical CPUs trains like one device on the same
global batches, and 2 MultiWorkerMirroredStrategy processes on 127.0.0.1 end with the same
weights, only the chief writing files.

Strategies must be made before TensorFlow runs any op, so each run is a fresh process
(tests/distribute_child.py). A worker whose peer is gone waits forever and ignores SIGTERM:
every child is bounded by a deadline and killed with SIGKILL."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

import train
from conftest import ROOT, TINY_CONFIG

CHILD = os.path.join(ROOT, "tests", "training", "distribute_child.py")
DEADLINE_SECONDS = 420


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def run_all(commands: list[list[str]], envs: list[dict], deadline: float = DEADLINE_SECONDS) -> list[tuple[int, str]]:
    """Runs the commands together; kills all of them with SIGKILL when one fails or the deadline
    passes. -> (exit status, stdout + stderr) each."""
    logs, processes = [], []
    outputs = []
    try:
        for command, env in zip(commands, envs):
            log = tempfile.TemporaryFile("w+")
            logs.append(log)
            processes.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT))
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            codes = [p.poll() for p in processes]
            if all(code == 0 for code in codes) or any(code not in (None, 0) for code in codes):
                break
            time.sleep(0.5)
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()  # SIGKILL: a worker waiting for its peer ignores SIGTERM
            p.wait()
        for log in logs:
            log.seek(0)
            outputs.append(log.read())
            log.close()
    return [(p.returncode, out) for p, out in zip(processes, outputs)]


def child_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env.update(extra)
    return env


def test_mirrored_over_two_logical_cpus_matches_single_device(corpus_dir, emb_dir, tmp_path):
    [(code, output)] = run_all([[sys.executable, CHILD, "equivalence", corpus_dir, emb_dir, str(tmp_path)]],
                               [child_env()])
    assert code == 0, output[-3000:]
    report = json.loads(output.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["initial"] == 0.0
    assert report["names"] and report["copies_equal"] and report["lr_equal"]
    assert report["sizes"][-1] == 1  # the last global batch leaves one replica without a sentence
    assert report["moved"] > 0.01
    assert report["loss"] < 1e-4
    assert report["variables"] < 1e-4


def test_mirrored_run_repeats_with_its_seed_and_resumes(corpus_dir, emb_dir, tmp_path):
    [(code, output)] = run_all([[sys.executable, CHILD, "repeat", corpus_dir, emb_dir, str(tmp_path)]], [child_env()])
    assert code == 0, output[-3000:]
    report = json.loads(output.strip().splitlines()[-1])
    assert report["same_seed_identical"]
    assert report["resumed_epochs"] == [1, 2]
    assert report["resumed_step"] == report["step"] > 0


def test_two_multi_worker_processes_end_with_identical_weights(corpus_dir, emb_dir, tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    commands, envs = [], []
    for index in range(2):
        argv = ["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", str(tmp_path / f"model{index}"),
                "--epochs", "2", "--seed", "5", "--strategy", "multi_worker"] + TINY_CONFIG
        commands.append([sys.executable, CHILD, "train", str(tmp_path / f"weights{index}.npz"), "--"] + argv)
        envs.append(child_env(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})))
    results = run_all(commands, envs)
    for index, (code, output) in enumerate(results):
        assert code == 0, f"worker {index} exited with {code}:\n{output[-3000:]}"
    first, second = (np.load(tmp_path / f"weights{index}.npz") for index in range(2))
    assert sorted(first.files) == sorted(second.files)
    for name in first.files:
        assert np.array_equal(first[name], second[name]), name
    assert int(first["adam|step"]) > 0
    # Only the chief (worker 0) writes: the model folder is complete, worker 1 wrote nothing.
    chief = tmp_path / "model0"
    for name in ("config.json", "words.txt", "history.jsonl", "checkpoints/best", "checkpoints/last", "logs"):
        assert (chief / name).exists(), name
    assert len((chief / "history.jsonl").read_text().splitlines()) == 2
    assert not (tmp_path / "model1").exists()


def test_multi_worker_needs_tf_config(corpus_dir, emb_dir, tmp_path, monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(SystemExit, match="TF_CONFIG"):
        train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m"),
                    "--strategy", "multi_worker"])


def test_logical_cpus_only_with_mirrored(corpus_dir, emb_dir, tmp_path):
    with pytest.raises(SystemExit, match="--logical_cpus only applies to --strategy mirrored"):
        train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m"),
                    "--logical_cpus", "2"])
