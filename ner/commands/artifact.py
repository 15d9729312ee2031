"""What ner-export and ner-freeze share: one command line that writes one serving artifact."""
import argparse

from ner import cli, model_folder


def main(description: str, default_folder: str, argv=None, formats: bool = False) -> None:
    """Writes the artifact whose folder is MODEL_DIR/`default_folder` (or --out); formats adds
    --format onnx and --int8 (ner-export), which write an ONNX folder (MODEL_DIR/onnx) instead."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_dir", required=True, help="a model folder written by ner-train")
    parser.add_argument("--out", help=f"output folder (default MODEL_DIR/{default_folder}"
                        + (f", or MODEL_DIR/{model_folder.ONNX_DIR} with --format onnx" if formats else "")
                        + "): new, empty or an earlier output of this command, whose files are replaced one by one")
    if formats:
        parser.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                            help="savedmodel (default), or onnx: the model from ids to emission scores as model.onnx "
                                 "with its vocabularies and head, served by ONNX Runtime without TensorFlow")
        parser.add_argument("--int8", action="store_true",
                            help="with --format onnx: int8 weights for the LSTM and matrix products (dynamic "
                                 "quantization: faster, a few tags may change)")
    args = cli.parse_args(parser, argv)
    onnx = formats and args.format == "onnx"
    if formats and args.int8 and not onnx:
        raise SystemExit("--int8 quantizes the ONNX export: use it with --format onnx")
    with cli.user_errors():
        if onnx:
            from ner.serving.onnx_export import write_onnx_folder
            print(f"wrote {write_onnx_folder(args.model_dir, args.out, args.int8)}")
            return
        from ner.serving.artifacts import write_artifact
        print(f"wrote {write_artifact(args.model_dir, default_folder, args.out)}")
