"""Exports a model folder's serving function as a SavedModel.

    python export.py --model_dir runs/NAME     # writes runs/NAME/export

Signature serving_default: words (string [batch, time], '' padding), lengths (int32 [batch])
and, for models trained with feature columns, features (string [batch, time, F]) in; tags
(IOB2 strings [batch, time]) and confidence (float32 [batch, time]) out. It loads with
tf.saved_model.load and with the C and C++ SavedModel APIs (tag "serve").
"""
import argparse

from ner import model_folder
from ner.cli import user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{model_folder.EXPORT_DIR}): "
                        "new, empty or an earlier output of this command, whose files are replaced one by one")
    args = parser.parse_args(argv)
    with user_errors():
        from ner.serving.artifacts import write_artifact  # TensorFlow loads only once the arguments are good
        print(f"wrote {write_artifact(args.model_dir, model_folder.EXPORT_DIR, args.out)}")


if __name__ == "__main__":
    main()
