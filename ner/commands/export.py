"""Exports a model folder's serving function as a SavedModel, or as an ONNX folder.

    ner-export --model_dir runs/NAME                        # writes runs/NAME/export
    ner-export --model_dir runs/NAME --format onnx [--int8] # writes runs/NAME/onnx

Signature serving_default: words (string [batch, time], '' padding), lengths (int32 [batch])
and, for models trained with feature columns, features (string [batch, time, F]) in; tags
(IOB2 strings [batch, time]) and confidence (float32 [batch, time]) out. It loads with
tf.saved_model.load and with the C and C++ SavedModel APIs (tag "serve").

--format onnx writes model.onnx (ids in, emission scores out: ner/serving/onnx_export.py) with
the vocabularies and the head's description, which inference.py, serve.py and beam_tag.py run on
ONNX Runtime without TensorFlow. BERT and ELMo models stay in TensorFlow.
"""
from ner import model_folder
from ner.commands import artifact


def main(argv=None) -> None:
    artifact.main(__doc__, model_folder.EXPORT_DIR, argv, formats=True)
