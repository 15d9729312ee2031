"""Freezes a model folder's serving function into a GraphDef for the C++ runner.

    ner-freeze --model_dir runs/NAME     # writes runs/NAME/frozen

frozen/graph.pb holds the serving function with its variables as constants; serving.json names
its input and output tensors and the op that fills the vocabulary tables, which a loader runs
once after importing the graph (see ner/serving/artifacts.py); config.json is the model's config.
"""
from ner import model_folder
from ner.commands import artifact


def main(argv=None) -> None:
    artifact.main(__doc__, model_folder.FROZEN_DIR, argv)
