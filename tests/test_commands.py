"""Every command with bad input, run as a user runs it (a subprocess): one line on stderr that names
the file, the line, the flag or the key and says what was expected; exit status 1; no traceback;
nothing written, deleted or clobbered."""
import os
import shutil
import signal
import socket
import subprocess
import sys

import pytest

from conftest import ROOT, TINY_CONFIG, folder_state, write_glove
from ner.data.schemes import convert_tags


def run(command: str, *args: str, stdin: bytes = b""):
    """A command as a user runs it: no TensorFlow log settings in its environment (it is quiet by itself)."""
    env = {key: value for key, value in os.environ.items() if key not in ("TF_CPP_MIN_LOG_LEVEL", "NER_VERBOSE")}
    return subprocess.run([sys.executable, os.path.join(ROOT, command), *map(str, args)], input=stdin,
                          capture_output=True, env=env, timeout=300)


def stderr_lines(done) -> list[str]:
    return [line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]


def assert_user_error(done, *expected: str):
    """Exit status 1, no traceback, and stderr exactly one line of ours holding every expected piece."""
    stderr = done.stderr.decode(errors="replace")
    assert "Traceback" not in stderr, stderr
    lines = stderr_lines(done)
    assert done.returncode == 1 and len(lines) == 1, stderr
    for piece in expected:
        assert piece in lines[0], (piece, lines[0])



@pytest.fixture
def two_column_corpus(tmp_path):
    """A corpus of another shape and other entity types than the CoNLL-like fixture: word and tag only."""
    folder = tmp_path / "genes"
    folder.mkdir()
    sentence = "The O\nBRCA1 B-GENE\ngene O\nbinds O\nTP53 B-GENE\n.  O\n\n"
    for split in ("train", "dev", "test"):
        (folder / f"{split}.txt").write_text(sentence * 3, encoding="utf-8")
    return folder


# --- embvec.py ---------------------------------------------------------------------------------


def test_embvec_refuses_paths_that_are_missing_or_of_the_wrong_kind(corpus_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "of"])
    assert_user_error(run("embvec.py", "--data_dir", tmp_path / "none", "--emb", glove, "--out", tmp_path / "o"),
                      "none", "--data_dir", "folder not found")
    assert_user_error(run("embvec.py", "--data_dir", glove, "--emb", glove, "--out", tmp_path / "o"),
                      "glove.txt", "expected a folder")
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", tmp_path / "none.txt", "--out",
                          tmp_path / "o"), "none.txt", "--emb", "file not found")
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", tmp_path, "--out", tmp_path / "o"),
                      "--emb", "is a folder, expected a file")
    assert not (tmp_path / "o").exists()


def test_embvec_names_the_line_of_a_bad_glove_file(corpus_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_bytes(b"the 0.1 0.2\nof 0.3 0.4\ncaf\xe9 0.5 0.6\n")
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", glove, "--out", tmp_path / "o"),
                      "glove.txt:3: expected UTF-8 text, found invalid byte 0xe9")
    packed = tmp_path / "glove.txt.gz"
    packed.write_bytes(b"not gzip at all\n")
    assert_user_error(run("embvec.py", "--data_dir", corpus_dir, "--emb", packed, "--out", tmp_path / "o"),
                      "glove.txt.gz:1: expected gzip-compressed text")
    assert not (tmp_path / "o").exists()


def test_embvec_never_replaces_what_it_did_not_write(corpus_dir, emb_dir, model_dir, tmp_path):
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "of"])
    data = tmp_path / "data"
    shutil.copytree(corpus_dir, data)
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    before = {path: folder_state(path) for path in (data, model_dir)}
    assert_user_error(run("embvec.py", "--data_dir", data, "--emb", glove, "--out", data),
                      "--out holds --data_dir", "overwrite the input")
    assert_user_error(run("embvec.py", "--data_dir", data, "--emb", glove, "--out", tmp_path),
                      "--out holds --data_dir")
    assert_user_error(run("embvec.py", "--data_dir", data, "--emb", glove, "--out", a_file),
                      "notes.txt", "is a file, expected a folder")
    assert_user_error(run("embvec.py", "--data_dir", data, "--emb", glove, "--out", model_dir),
                      "is a folder train.py wrote", "not embvec.py")
    assert a_file.read_text() == "keep me\n"
    assert {path: folder_state(path) for path in (data, model_dir)} == before
    # An earlier output of embvec.py is what --out may replace.
    earlier = tmp_path / "vocab"
    shutil.copytree(emb_dir, earlier)
    done = run("embvec.py", "--data_dir", data, "--emb", glove, "--out", earlier)
    assert done.returncode == 0, done.stderr.decode()


# --- train.py ----------------------------------------------------------------------------------


def train(corpus, emb, model, *more):
    return run("train.py", "--data_dir", corpus, "--emb_dir", emb, "--model_dir", model, "--epochs", "1",
               *TINY_CONFIG, *more)


def test_train_refuses_its_emb_dir_or_a_file_as_model_dir(corpus_dir, emb_dir, tmp_path):
    emb = tmp_path / "emb"
    shutil.copytree(emb_dir, emb)
    before = folder_state(emb)
    assert_user_error(train(corpus_dir, emb, emb), "--model_dir is the --emb_dir")
    assert folder_state(emb) == before
    a_file = tmp_path / "model.txt"
    a_file.write_text("x")
    assert_user_error(train(corpus_dir, emb, a_file), "model.txt", "expected a folder")
    assert_user_error(train(tmp_path / "none", emb, tmp_path / "m"), "--data_dir", "folder not found")
    assert_user_error(train(corpus_dir, tmp_path / "none", tmp_path / "m"), "--emb_dir", "folder not found")
    assert not (tmp_path / "m").exists()


def test_train_refuses_columns_the_data_lacks_before_writing_anything(two_column_corpus, corpus_dir, emb_dir,
                                                                     tmp_path):
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "gene", "binds"])
    genes_emb = tmp_path / "genes_emb"
    assert run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", genes_emb).returncode == 0
    model = tmp_path / "m"
    # CoNLL's POS and chunk columns asked of a word-and-tag corpus.
    assert_user_error(train(two_column_corpus, genes_emb, model, "--set", "feature_columns=[1, 2]"),
                      "genes_emb", "no vocabulary of column(s) [1, 2]")
    # The vocabularies of a corpus with the columns, and the data without them.
    assert_user_error(train(two_column_corpus, emb_dir, model, "--set", "feature_columns=[1, 2]"),
                      "train.txt:1: the model reads column 3", "found 2 columns")
    assert not model.exists()


def test_train_refuses_entity_types_its_vocabularies_lack(two_column_corpus, emb_dir, tmp_path):
    model = tmp_path / "m"
    assert_user_error(train(two_column_corpus, emb_dir, model), "train.txt: entity type(s) GENE missing from",
                      "entity_types.txt")
    assert not model.exists()


def test_an_entity_type_only_dev_has_is_named_with_its_line_and_advice_that_works(two_column_corpus, tmp_path):
    dev = two_column_corpus / "dev.txt"
    dev.write_text(dev.read_text() + "Aspirin B-DRUG\nhelps O\n", encoding="utf-8")
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "gene", "binds"])
    emb, model = tmp_path / "emb", tmp_path / "m"
    assert run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", emb).returncode == 0
    before = folder_state(two_column_corpus), folder_state(emb)
    message = ("dev.txt:22: entity type DRUG does not occur in", "train.txt (GENE)", "correct the tag, or add DRUG "
               "sentences to train.txt and rebuild the vocabularies with embvec.py")
    assert_user_error(train(two_column_corpus, emb, model), *message)
    # Rebuilding the vocabularies, as the message says, does not help until train.txt has the type.
    shutil.rmtree(emb)
    assert run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", emb).returncode == 0
    assert_user_error(train(two_column_corpus, emb, model), *message)
    assert (folder_state(two_column_corpus), folder_state(emb)) == before
    assert not model.exists()
    train_file = two_column_corpus / "train.txt"
    train_file.write_text(train_file.read_text() + "Aspirin B-DRUG\nhelps O\n", encoding="utf-8")
    assert run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", emb).returncode == 0
    done = train(two_column_corpus, emb, model)
    assert done.returncode == 0, done.stderr.decode()


@pytest.mark.parametrize("assignment, expected", [
    ("learning_rate=NaN", "learning_rate=nan: expected a positive learning rate"),
    ("feature_dim=-4", "feature_dim=-4: expected a positive integer"),
    ("dropout=1.5", "dropout=1.5: expected 0 <= dropout < 1"),
    ("lstm_units=wide", "lstm_units='wide': expected a int"),
    ("lstm_unitz=3", "unknown config key"),
])
def test_train_validates_config_values(corpus_dir, emb_dir, tmp_path, assignment, expected):
    assert_user_error(train(corpus_dir, emb_dir, tmp_path / "m", "--set", assignment), expected)
    assert not (tmp_path / "m").exists()


def test_train_names_a_config_file_that_is_a_folder_or_bad_json(corpus_dir, emb_dir, tmp_path):
    assert_user_error(train(corpus_dir, emb_dir, tmp_path / "m", "--config", tmp_path), "is a folder")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "lstm_units": 20,\n  "dropout": \n}\n')
    assert_user_error(train(corpus_dir, emb_dir, tmp_path / "m", "--config", bad), "bad.json:4: invalid JSON")


def test_train_resume_with_nothing_to_resume(corpus_dir, tmp_path):
    (tmp_path / "m").mkdir()
    assert_user_error(run("train.py", "--data_dir", corpus_dir, "--emb_dir", "unused", "--model_dir", tmp_path / "m",
                          "--resume"), "config.json", "nothing to resume", "without --resume")


# --- inference.py ------------------------------------------------------------------------------


def test_inference_checks_every_path_before_tagging(model_dir, corpus_dir, tmp_path):
    test = os.path.join(corpus_dir, "test.txt")
    assert_user_error(run("inference.py", "--model_dir", model_dir, "--input", tmp_path), "--input",
                      "is a folder, expected a file")
    assert_user_error(run("inference.py", "--model_dir", model_dir, "--input", tmp_path / "none.txt"),
                      "none.txt", "file not found")
    assert_user_error(run("inference.py", "--model_dir", model_dir, "--input", test, "--output",
                          tmp_path / "no" / "pred.txt"), "--output", "does not exist")
    assert_user_error(run("inference.py", "--model_dir", model_dir, "--input", test, "--output", tmp_path),
                      "--output", "is a folder")
    assert_user_error(run("inference.py", "--model_dir", tmp_path / "none", "--input", test), "model folder not found")


def test_inference_reports_input_that_does_not_fit_the_model(feature_model_dir, tmp_path):
    conll = tmp_path / "in.txt"
    conll.write_text("Paris NNP\nis VBZ\n")
    assert_user_error(run("inference.py", "--model_dir", feature_model_dir, "--input", conll),
                      "in.txt:1: the model reads column 3")
    assert_user_error(run("inference.py", "--model_dir", feature_model_dir, "--input", conll, "--format", "text"),
                      "trained with CoNLL feature columns [1, 2]")
    conll.write_text("Paris NNP B-NP\nis VBZ\n")
    assert_user_error(run("inference.py", "--model_dir", feature_model_dir, "--input", conll),
                      "in.txt:2: expected 3 columns like line 1, found 2")


def at_a_terminal():
    """SIGINT as at a terminal: a test run started in the background by a script inherits it ignored
    (as such a shell's background jobs do), and Python then keeps ignoring it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_ends_a_command_with_one_line_and_the_shells_status(model_dir):
    """SIGINT while inference.py waits on stdin: "interrupted" and status 130, not a traceback."""
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    process = subprocess.Popen([sys.executable, os.path.join(ROOT, "inference.py"), "--model_dir", str(model_dir),
                                "--format", "text", "--input", "-"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=env, preexec_fn=at_a_terminal)
    process.stdin.write(b"Velmar signs in Oslo .\n")
    process.stdin.flush()
    assert process.stdout.readline().strip(), "the first sentence is tagged before stdin ends"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr.decode().splitlines() == ["interrupted"], stderr


@pytest.mark.parametrize("command", ["embvec.py", "inference.py"])
def test_a_python_without_the_projects_packages_is_told_where_to_run(command, model_dir, corpus_dir, tmp_path):
    """python -S: no site-packages, as a checkout's command run outside .venv finds none of ours."""
    args = {"embvec.py": ["--data_dir", corpus_dir, "--out", tmp_path / "emb"],
            "inference.py": ["--model_dir", model_dir, "--input", os.path.join(corpus_dir, "test.txt")]}[command]
    done = subprocess.run([sys.executable, "-S", os.path.join(ROOT, command), *map(str, args)], capture_output=True)
    assert_user_error(done, "is not installed for", "source .venv/bin/activate")
    assert not (tmp_path / "emb").exists()


def test_inference_batch_size_must_be_positive(model_dir, corpus_dir):
    done = run("inference.py", "--model_dir", model_dir, "--input", os.path.join(corpus_dir, "test.txt"),
               "--batch_size", "0")
    assert done.returncode == 2 and b"--batch_size: expected a positive number" in done.stderr


def test_inference_writes_through_links_and_devices(model_dir, tmp_path):
    text = tmp_path / "in.txt"
    text.write_text("Angela Merkel visited Paris\n")
    target = tmp_path / "target.txt"
    target.write_text("old\n")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    done = run("inference.py", "--model_dir", model_dir, "--input", text, "--format", "text", "--output", link)
    assert done.returncode == 0, done.stderr.decode()
    assert link.is_symlink() and target.read_text().startswith("Angela ")
    done = run("inference.py", "--model_dir", model_dir, "--input", text, "--format", "text", "--output", os.devnull)
    assert done.returncode == 0, done.stderr.decode()
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)


def test_inference_output_scheme_comes_from_a_gold_ner_column_only(feature_model_dir, corpus_dir, tmp_path):
    """word POS chunk (no gold NER column), the chunk column in IOB1: the output is IOB2."""
    lines = open(os.path.join(corpus_dir, "test.txt"), encoding="utf-8").read().splitlines()
    untagged = [" ".join(line.split()[:3]).replace("B-NP", "I-NP") for line in lines]
    conll = tmp_path / "in.txt"
    conll.write_text("\n".join(untagged) + "\n")
    done = run("inference.py", "--model_dir", feature_model_dir, "--input", conll)
    assert done.returncode == 0, done.stderr.decode()
    tags = [line.split()[-1] for line in done.stdout.decode().splitlines() if line and not line.startswith("-DOC")]
    assert any(tag.startswith("B-") for tag in tags)
    assert convert_tags(tags, "iob2", "iob2") == tags  # well-formed IOB2: no chunk opens with I-


# --- export.py, freeze.py -------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["export.py", "freeze.py"])
def test_artifact_commands_refuse_what_they_would_destroy(command, model_dir, tmp_path):
    before = folder_state(model_dir)
    assert_user_error(run(command, "--model_dir", model_dir, "--out", model_dir), "--out holds the model folder")
    assert_user_error(run(command, "--model_dir", model_dir, "--out", os.path.dirname(model_dir)),
                      "--out holds the model folder")
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "keep.txt").write_text("keep me\n")
    assert_user_error(run(command, "--model_dir", model_dir, "--out", notes), "--out holds keep.txt", "never writes")
    a_file = tmp_path / "a.txt"
    a_file.write_text("keep me\n")
    assert_user_error(run(command, "--model_dir", model_dir, "--out", a_file), "is a file, expected a folder")
    assert_user_error(run(command, "--model_dir", tmp_path / "none"), "model folder not found")
    assert (notes / "keep.txt").read_text() == a_file.read_text() == "keep me\n"
    assert folder_state(model_dir) == before


# --- serve.py, beam_tag.py ---------------------------------------------------------------------------


def test_serve_reports_a_missing_model(tmp_path):
    assert_user_error(run("serve.py", "--model_dir", tmp_path / "none"), "none", "model folder not found")


def test_serve_names_the_flag_when_its_port_is_taken(model_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert_user_error(run("serve.py", "--model_dir", model_dir, "--port", port),
                          f"127.0.0.1:{port}: the address is in use", "--port")


def test_beam_tag_reports_bad_arguments(feature_model_dir, tmp_path):
    assert_user_error(run("beam_tag.py", "--model_dir", feature_model_dir, "--input", tmp_path / "*.txt",
                          "--output", tmp_path / "out"), "no input file matches")
    (tmp_path / "a.txt").write_text("Hello world\n")
    assert_user_error(run("beam_tag.py", "--model_dir", feature_model_dir, "--input", tmp_path / "*.txt",
                          "--output", tmp_path / "out", "--format", "text"), "trained with CoNLL feature columns")
    assert_user_error(run("beam_tag.py", "--model_dir", tmp_path / "none", "--input", tmp_path / "*.txt",
                          "--output", tmp_path / "out"), "config.json")
    assert_user_error(run("beam_tag.py", "--model_dir", feature_model_dir, "--input", tmp_path / "*.txt",
                          "--output", tmp_path / "a.txt"), "--output", "is a file, expected a folder")


def test_no_command_writes_over_its_input(model_dir, corpus_dir, tmp_path):
    conll = tmp_path / "in.txt"
    shutil.copy(os.path.join(corpus_dir, "test.txt"), conll)
    before = conll.read_bytes()
    assert_user_error(run("inference.py", "--model_dir", model_dir, "--input", conll, "--output", conll),
                      "--output is the --input")
    assert_user_error(run("beam_tag.py", "--model_dir", model_dir, "--input", tmp_path / "*.txt", "--output", tmp_path),
                      "--output is the folder of the input shard")
    assert conll.read_bytes() == before


def test_conlleval_names_a_file_it_cannot_read(tmp_path):
    assert_user_error(run(os.path.join("etc", "conlleval.py"), tmp_path / "none.txt"), "none.txt: cannot read")
    assert_user_error(run(os.path.join("etc", "conlleval.py"), tmp_path), "cannot read: Is a directory")


def test_embvec_and_train_bound_their_input_lines_and_name_the_flag_that_raises_it(two_column_corpus, tmp_path):
    long_word = "A" * 70000
    train_file = two_column_corpus / "train.txt"
    train_file.write_text(train_file.read_text() + f"{long_word} O\n", encoding="utf-8")
    glove = tmp_path / "glove.txt"
    write_glove(glove, ["the", "gene"])
    emb, model = tmp_path / "emb", tmp_path / "m"
    message = ("train.txt:22: expected a line of at most 65536 bytes (--max_line_bytes raises it)",)
    assert_user_error(run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", emb), *message)
    assert not emb.exists()
    done = run("embvec.py", "--data_dir", two_column_corpus, "--emb", glove, "--out", emb, "--max_line_bytes", "80000")
    assert done.returncode == 0, done.stderr.decode()
    assert_user_error(train(two_column_corpus, emb, model), *message)
    assert not model.exists()
