"""A model folder whose config.json no longer describes its checkpoint is refused with the key that
changed; keys that only steer training may change."""
import json
import os
import shutil

import pytest

from ner import model_folder
from ner.serving.loaders import load_model


def edited_copy(model_dir, tmp_path, **changes):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    path = folder / model_folder.CONFIG
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))
    return str(folder)


def test_training_keeps_the_config_beside_the_best_checkpoint(model_dir):
    trained = json.load(open(os.path.join(model_dir, model_folder.TRAINED_CONFIG)))
    assert trained == json.load(open(os.path.join(model_dir, model_folder.CONFIG)))


@pytest.mark.parametrize("changes, key", [({"use_crf": False}, "use_crf=false"), ({"lstm_units": 32}, "lstm_units=32"),
                                          ({"crf_constrained": False}, "crf_constrained=false")])
def test_a_changed_key_is_named(model_dir, tmp_path, changes, key):
    folder = edited_copy(model_dir, tmp_path, **changes)
    with pytest.raises(ValueError, match=f"config.json: {key} but the checkpoint was trained with"):
        load_model(folder)


@pytest.mark.parametrize("changes, message", [({"use_crf": False}, "model/head/end"),
                                              ({"lstm_units": 32}, "incompatible tensor with shape")])
def test_without_the_trained_config_the_variable_that_does_not_fit_is_named(model_dir, tmp_path, changes, message):
    """Model folders trained before the checkpoint kept its config."""
    folder = edited_copy(model_dir, tmp_path, **changes)
    os.remove(os.path.join(folder, model_folder.TRAINED_CONFIG))
    os.remove(os.path.join(folder, model_folder.INTEGRITY))  # such folders had no manifest either
    with pytest.raises(ValueError, match=f"does not match the model .*config.json describes: .*{message}"):
        load_model(folder)


def test_training_keys_may_change(model_dir, tmp_path):
    folder = edited_copy(model_dir, tmp_path, epochs=99, learning_rate=0.5, dropout=0.1, batch_size=3)
    assert load_model(folder).config.epochs == 99
