"""Exports a model folder's serving function as a SavedModel.

    python export.py --model_dir runs/NAME     # writes runs/NAME/export

Signature serving_default: words (string [batch, time], '' padding), lengths (int32 [batch])
and, for models trained with feature columns, features (string [batch, time, F]) in; tags
(IOB2 strings [batch, time]) and confidence (float32 [batch, time]) out. It loads with
tf.saved_model.load and with the C and C++ SavedModel APIs (tag "serve").
"""
import argparse
import os

import serving
from tagging import load_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{serving.EXPORT_DIR})")
    args = parser.parse_args(argv)

    try:
        model = load_checkpoint(args.model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    out = args.out or os.path.join(args.model_dir, serving.EXPORT_DIR)
    serving.export(model, os.path.join(args.model_dir, serving.CONFIG), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
