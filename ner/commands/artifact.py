"""What ner-export and ner-freeze share: one command line that writes one serving artifact."""
import argparse

from ner import cli


def main(description: str, default_folder: str, argv=None) -> None:
    """Writes the artifact whose folder is MODEL_DIR/`default_folder` (or --out)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by ner-train")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{default_folder}): "
                        "new, empty or an earlier output of this command, whose files are replaced one by one")
    args = cli.parse_args(parser, argv)
    with cli.user_errors():
        from ner.serving.artifacts import write_artifact
        print(f"wrote {write_artifact(args.model_dir, default_folder, args.out)}")
