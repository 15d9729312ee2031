"""Freezes a model folder's serving function into a GraphDef for the C++ runner.

    python freeze.py --model_dir runs/NAME     # writes runs/NAME/frozen

frozen/graph.pb holds the serving function with its variables as constants; serving.json names
its input and output tensors and the op that fills the vocabulary tables, which a loader runs
once after importing the graph (see ner/serving/artifacts.py); config.json is the model's config.
"""
import argparse

from ner import model_folder
from ner.cli import user_errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by train.py")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{model_folder.FROZEN_DIR}): "
                        "new, empty or an earlier output of this command, whose files are replaced one by one")
    args = parser.parse_args(argv)
    with user_errors():
        from ner.serving.artifacts import write_artifact  # TensorFlow loads only once the arguments are good
        print(f"wrote {write_artifact(args.model_dir, model_folder.FROZEN_DIR, args.out)}")


if __name__ == "__main__":
    main()
