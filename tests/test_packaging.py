"""The installable package: pyproject.toml's console commands (ner-train, ...) are the root scripts
(python train.py, ...) under another name, they answer --help without loading TensorFlow, and the
package installed into a fresh venv (not editable) runs a real job away from the checkout."""
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable

import pytest

from conftest import ROOT

# Each command's module in ner/commands and its root script.
ROOT_SCRIPTS = {"embvec": "embvec.py", "train": "train.py", "inference": "inference.py", "export": "export.py",
                "freeze": "freeze.py", "serve": "serve.py", "beam_tag": "beam_tag.py",
                "conlleval": os.path.join("etc", "conlleval.py")}
# What the installed package is built from: nothing else of the checkout may be needed.
PACKAGE_SOURCES = ("pyproject.toml", "README.md", "ner")
BIN = os.path.dirname(sys.executable)
# argparse wraps --help to the terminal's width: the same width for every run.
HELP_ENV = dict(os.environ, COLUMNS="100")


def console_name(module: str) -> str:
    return "ner-" + module.replace("_", "-")


def help_text(done: subprocess.CompletedProcess, prog: str) -> str:
    """--help's output with the program's name taken out of the usage paragraph, which argparse
    wraps by the name's length."""
    usage, _, rest = done.stdout.partition("\n\n")
    return " ".join(usage.replace(prog, "PROG").split()) + "\n\n" + rest


def test_every_root_command_is_a_console_command():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        scripts = tomllib.load(f)["project"]["scripts"]
    assert scripts == {console_name(module): f"ner.commands.{module}:main" for module in ROOT_SCRIPTS}


@pytest.mark.parametrize("module", sorted(ROOT_SCRIPTS))
def test_console_command_answers_help_as_its_root_script(module):
    command = os.path.join(BIN, console_name(module))
    if not os.path.exists(command):
        pytest.skip(f"{console_name(module)} is not installed beside {sys.executable}: `pip install -e .` "
                    "(make does) installs the console commands")
    script = ROOT_SCRIPTS[module]
    from_root = subprocess.run([sys.executable, os.path.join(ROOT, script), "--help"], capture_output=True, text=True,
                               env=HELP_ENV, timeout=60)
    installed = subprocess.run([command, "--help"], capture_output=True, text=True, env=HELP_ENV, cwd=BIN, timeout=60)
    for done in (from_root, installed):
        assert (done.returncode, done.stderr) == (0, ""), done
    assert help_text(installed, console_name(module)) == help_text(from_root, os.path.basename(script))
    if module != "conlleval":  # conlleval.pl's own command line
        assert "--verbose" in installed.stdout


@pytest.mark.parametrize("module", sorted(ROOT_SCRIPTS))
def test_help_and_a_bad_flag_load_neither_tensorflow_nor_beam(module):
    """They answer at once: the heavy modules load inside main, once the arguments are good."""
    code = (f"import sys\nfrom ner.commands import {module}\n"
            "for argv in (['--help'], ['--no_such_flag']):\n"
            "    try:\n"
            f"        {module}.main(argv)\n"
            "    except SystemExit:\n"
            "        pass\n"
            "print('loaded:', sorted({'tensorflow', 'apache_beam', 'aiohttp'} & set(sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.splitlines()[-1] == "loaded: []", done


def requirements(name: str) -> list[str]:
    """The requirements in the checkout's requirements file `name` (what `pip install -r` installs)."""
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        lines = [line.split("#")[0].strip() for line in f]
    return [line for line in lines if line]


def package_source_and_venv(tmp_path) -> tuple[str, str]:
    """A copy of what the package is built from, so that a stale build/ in the checkout cannot leak
    into an install and nothing else of the checkout is needed, and a fresh venv: (their folders)."""
    source = tmp_path / "source"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        path = os.path.join(ROOT, name)
        if os.path.isdir(path):
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, source / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    return str(source), str(venv)


def pip_install(venv: str, *install: str) -> None:
    done = subprocess.run([os.path.join(venv, "bin", "python"), "-m", "pip", "install", "--quiet",
                           "--disable-pip-version-check", *install], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stderr[-5000:]


def venv_environment() -> dict[str, str]:
    """This process's environment without this venv's and the checkout's paths: for a fresh venv's commands."""
    return {name: value for name, value in os.environ.items() if name not in ("PYTHONPATH", "VIRTUAL_ENV")}


def venv_runner(venv: str, work) -> Callable[..., subprocess.CompletedProcess]:
    """run(command, *args): the venv's command in the folder `work` (made here, outside the
    checkout) with venv_environment(); asserts that it succeeds."""
    os.makedirs(work, exist_ok=True)

    def run(*command: str) -> subprocess.CompletedProcess:
        done = subprocess.run([os.path.join(venv, "bin", command[0]), *command[1:]], capture_output=True, text=True,
                              cwd=work, env=venv_environment(), timeout=600)
        assert done.returncode == 0, (command, done.stderr[-5000:])
        return done
    return run


@pytest.mark.install
def test_the_package_installed_into_a_fresh_venv_trains_and_tags(tmp_path):
    """`pip install .` plus the one --no-deps line, as the README says, then a job from another folder.
    About 100 s with the downloads here."""
    source, venv = package_source_and_venv(tmp_path)
    for install in ([str(source)], ["--no-deps", *requirements("requirements-no-deps.txt")]):
        pip_install(venv, *install)
    run = venv_runner(venv, tmp_path / "work")

    imported = run("python", "-c", "import ner; print(ner.__file__)").stdout.strip()
    assert imported.startswith(str(venv)), imported
    run("ner-conlleval", "--help")
    sample = os.path.join(ROOT, "data", "sample")
    run("ner-embvec", "--data_dir", sample, "--out", "emb")
    run("ner-train", "--config", os.path.join(ROOT, "experiments", "demo.json"), "--data_dir", sample, "--emb_dir", "emb",
        "--model_dir", "model", "--epochs", "1")
    examples = os.path.join(sample, "examples.txt")
    tagged = run("ner-inference", "--model_dir", "model", "--format", "text", "--input", examples).stdout
    sentences = [[line.split() for line in block.splitlines()] for block in tagged.strip().split("\n\n")]
    with open(examples, encoding="utf-8") as f:
        lines = f.read().splitlines()
    # The model's tokenizer splits off punctuation: the tokens put together give each line back.
    assert ["".join(token for token, _ in sentence) for sentence in sentences] == [line.replace(" ", "") for line in lines]
    tags = {tag for sentence in sentences for _, tag in sentence}
    known = {"O"} | {f"{prefix}-{kind}" for prefix in "BI" for kind in ("PER", "LOC", "ORG", "MISC")}
    assert "B-LOC" in tags and tags <= known, tags
