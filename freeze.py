"""Freezes a model folder's serving function into a GraphDef for the C++ runner.

    python freeze.py --model_dir runs/NAME     # writes runs/NAME/frozen

frozen/graph.pb holds the serving function with its variables as constants; serving.json names
its input and output tensors and the op that fills the vocabulary tables, which a loader runs
once after importing the graph (see serving.py); config.json is the model's config.
"""
import serving


def main(argv=None):
    serving.command_line(argv, __doc__, serving.FROZEN_DIR, serving.freeze)


if __name__ == "__main__":
    main()
