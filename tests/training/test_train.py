"""train.py's command line: errors are clear and nothing is overwritten by accident."""
import pytest

import train


def test_refuses_to_overwrite_a_model(model_dir, corpus_dir, emb_dir):
    with pytest.raises(SystemExit, match=r"already holds a model \(epoch 3 finished\); use --resume"):
        train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", model_dir])


def test_unknown_config_key_is_reported(corpus_dir, emb_dir, tmp_path):
    with pytest.raises(SystemExit, match="unknown config key"):
        train.main(["--data_dir", corpus_dir, "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m"),
                    "--set", "lstm_unitz=3"])


def test_missing_dev_file_is_reported(tmp_path, emb_dir):
    (tmp_path / "train.txt").write_text("a O\n")
    with pytest.raises(SystemExit, match="dev.txt: not found"):
        train.main(["--data_dir", str(tmp_path), "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m")])


def test_bad_training_file_names_file_and_line(tmp_path, emb_dir):
    (tmp_path / "train.txt").write_text("a NN O\nb NN\n")
    (tmp_path / "dev.txt").write_text("a NN O\n")
    with pytest.raises(SystemExit, match=r"train.txt:2: expected 3 columns"):
        train.main(["--data_dir", str(tmp_path), "--emb_dir", emb_dir, "--model_dir", str(tmp_path / "m")])
