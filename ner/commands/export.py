"""Exports a model folder's serving function as a SavedModel.

    ner-export --model_dir runs/NAME     # writes runs/NAME/export

Signature serving_default: words (string [batch, time], '' padding), lengths (int32 [batch])
and, for models trained with feature columns, features (string [batch, time, F]) in; tags
(IOB2 strings [batch, time]) and confidence (float32 [batch, time]) out. It loads with
tf.saved_model.load and with the C and C++ SavedModel APIs (tag "serve").
"""
from ner import model_folder
from ner.commands import artifact


def main(argv=None) -> None:
    artifact.main(__doc__, model_folder.EXPORT_DIR, argv)
