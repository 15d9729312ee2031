"""The NER toolkit's library. Its folders are the stages data flows through, each using only
the ones above it:

    data/       CoNLL and raw text in, tag schemes, batching, vocabularies and pretrained vectors,
                rendering tagged sentences out, conlleval scoring
    model/      the tagger: features/ (words, characters, columns, BERT, ELMo), encoders/, heads/,
                layers/ (small shared building blocks); tagging.py tags sentences with any model
    training/   the loop, checkpoints and resuming, optimizer, weight averaging, tf.distribute,
                dev metrics; run.py is train.py's entry
    serving/    export and frozen artifacts, the loaders of every model folder form, the native
                (C++) library binding; tag_file.py is inference.py's entry
    service/    the HTTP service (serve.py)
    beam/       the Apache Beam pipeline (beam_tag.py)

Beside them: config.py (the one config object), model_folder.py (a model folder's layout and
atomic writes), cli.py (how commands report errors), paths.py (the paths a command is given,
checked before any work), tf_options.py (process-wide TensorFlow settings), op_libraries.py
(TensorFlow Text's op libraries, loaded by file). The commands at the
repository root are argparse plus one call into this package.
"""
