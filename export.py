"""Exports a model folder's serving function as a SavedModel.

    python export.py --model_dir runs/NAME     # writes runs/NAME/export

Signature serving_default: words (string [batch, time], '' padding), lengths (int32 [batch])
and, for models trained with feature columns, features (string [batch, time, F]) in; tags
(IOB2 strings [batch, time]) and confidence (float32 [batch, time]) out. It loads with
tf.saved_model.load and with the C and C++ SavedModel APIs (tag "serve").
"""
import serving


def main(argv=None):
    serving.command_line(argv, __doc__, serving.EXPORT_DIR, serving.export)


if __name__ == "__main__":
    main()
