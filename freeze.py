"""Freezes a model folder's serving function into a GraphDef for the C++ runner.

    python freeze.py --model_dir runs/NAME     # writes runs/NAME/frozen

frozen/graph.pb holds the serving function with its variables as constants; serving.json names
its input and output tensors and the op that fills the vocabulary tables, which a loader runs
once after importing the graph (see serving.py); config.json is the model's config.
"""
import argparse
import os

import serving
from tagging import load_checkpoint


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{serving.FROZEN_DIR})")
    args = parser.parse_args(argv)

    try:
        model = load_checkpoint(args.model_dir)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(str(e)) from None
    out = args.out or os.path.join(args.model_dir, serving.FROZEN_DIR)
    serving.freeze(model, os.path.join(args.model_dir, serving.CONFIG), out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
