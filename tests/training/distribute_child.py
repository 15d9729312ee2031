"""Run by tests/test_distribute.py in fresh processes: a strategy must be made before
TensorFlow runs any op, which the pytest process did long ago.

    python tests/distribute_child.py equivalence CORPUS EMB WORK
        2 logical CPUs: the single-device step and the MirroredStrategy step on the same global
        batches; prints a JSON report of their largest differences.
    python tests/distribute_child.py repeat CORPUS EMB WORK
        2 logical CPUs, MirroredStrategy: two runs with one seed, and a run resumed after epoch 1;
        prints a JSON report.
    python tests/distribute_child.py train WEIGHTS.npz -- TRAIN.PY ARGS...
        train.py ARGS in this process (TF_CONFIG from the environment), then every variable into WEIGHTS.npz.
"""
import json
import os
import sys

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ROOT = os.path.dirname(TESTS)
sys.path.insert(0, ROOT)
sys.path.insert(0, TESTS)  # conftest
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from ner.training import distribute  # noqa: E402


def variables_of(trainer) -> dict:
    state = {v.path if hasattr(v, "path") else v.name: v for v in trainer.model.variables}
    state.update({f"adam/{i}/m": m for i, m in enumerate(trainer.optimizer.first_moments)})
    state.update({f"adam/{i}/v": v for i, v in enumerate(trainer.optimizer.second_moments)})
    state["adam/step"] = trainer.optimizer.step
    return {name: variable.numpy() for name, variable in state.items()}


def equivalence(corpus: str, emb: str, work: str):
    strategy = distribute.make_strategy("mirrored", logical_cpus=2)
    import numpy as np
    import tensorflow as tf

    from conftest import TINY_CONFIG, config_from
    from ner.data.batching import make_dataset
    from ner.data.conll import read_split
    from ner.data.schemes import detect_scheme
    from ner.training.run import make_trainer

    config = config_from(["--seed", "3", *TINY_CONFIG, "--set", "dropout=0", "--set", "word_dropout=0",
                          "--set", "word_emb_trainable=true", "--set", "feature_columns=[1, 2]",
                          "--set", "batch_size=7"])
    sentences = read_split(corpus, "train")
    single = make_trainer(config, emb, os.path.join(work, "single"))
    mirrored = make_trainer(config, emb, os.path.join(work, "mirrored"), strategy=strategy)
    assert mirrored.strategy.num_replicas_in_sync == 2
    before = variables_of(single)
    report = {"replicas": mirrored.strategy.num_replicas_in_sync,
              "initial": max(float(np.max(np.abs(before[k] - v))) for k, v in variables_of(mirrored).items()),
              "loss": 0.0, "steps": 0, "sizes": []}
    scheme = detect_scheme(s.tags for s in sentences)
    dataset = make_dataset(sentences, config.feature_columns, config.batch_size,
                                 tag_scheme=(scheme, config.tag_scheme), shuffle_seed=11)
    batches = list(dataset.take(12))
    # A last batch of one sentence: one replica's share is empty.
    batches.append({key: value[:1] for key, value in batches[0].items()})
    for batch in batches:
        loss_single, lr_single = single.step(batch)
        loss_mirrored, lr_mirrored = mirrored.step(batch)
        report["loss"] = max(report["loss"], abs(float(loss_single) - float(loss_mirrored)))
        report["lr_equal"] = float(lr_single) == float(lr_mirrored)
        report["steps"] += 1
        report["sizes"].append(int(tf.shape(batch["lengths"])[0]))
    after_single, after_mirrored = variables_of(single), variables_of(mirrored)
    report["names"] = sorted(after_single) == sorted(after_mirrored)
    report["moved"] = max(float(np.max(np.abs(after_single[k] - before[k]))) for k in after_single
                          if not k.startswith("adam/"))
    report["variables"] = max(float(np.max(np.abs(after_single[k] - after_mirrored[k])))
                              for k in after_single)
    # Each replica's copy of every mirrored variable is the same.
    report["copies_equal"] = all(np.array_equal(values[0].numpy(), value.numpy())
                                 for variable in mirrored.model.variables
                                 for values in [mirrored.strategy.experimental_local_results(variable)]
                                 for value in values)
    print(json.dumps(report))


def repeat(corpus: str, emb: str, work: str):
    strategy = distribute.make_strategy("mirrored", logical_cpus=2)
    import numpy as np

    from conftest import TINY_CONFIG, config_from
    from ner.data.conll import read_split
    from ner.data.schemes import detect_scheme
    from ner.training.run import make_config, make_trainer

    sentences, dev = read_split(corpus, "train")[:64], read_split(corpus, "dev")
    scheme = detect_scheme(s.tags for s in dev)

    def run(name, epochs, resume=False):
        model_dir = os.path.join(work, name)
        config = (make_config(model_dir, True, epochs=epochs) if resume
                  else config_from(["--seed", "9", "--epochs", str(epochs), *TINY_CONFIG]))
        trainer = make_trainer(config, emb, model_dir, resume=resume, strategy=strategy)
        trainer.fit(sentences, dev[:16], scheme)
        return trainer

    first, second = variables_of(run("a", 2)), variables_of(run("b", 2))
    run("c", 1)
    config = json.load(open(os.path.join(work, "c", "config.json")))
    config["epochs"] = 2  # as if the first run had been interrupted after epoch 1 of 2
    with open(os.path.join(work, "c", "config.json"), "w") as f:
        json.dump(config, f)
    resumed = run("c", 2, resume=True)
    history = [json.loads(line) for line in open(os.path.join(work, "c", "history.jsonl"))]
    print(json.dumps({"same_seed_identical": all(np.array_equal(first[k], second[k]) for k in first),
                      "resumed_epochs": [h["epoch"] for h in history],
                      "resumed_step": int(resumed.optimizer.step.numpy()), "step": int(first["adam/step"])}))


def train_and_dump(weights: str, argv: list):
    import numpy as np

    from ner.commands import train
    trainer = train.run(argv)
    np.savez(weights, **{name.replace("/", "|"): value for name, value in variables_of(trainer).items()})
    print("done", file=sys.stderr)


if __name__ == "__main__":
    if sys.argv[1] == "equivalence":
        equivalence(*sys.argv[2:5])
    elif sys.argv[1] == "repeat":
        repeat(*sys.argv[2:5])
    elif sys.argv[1] == "train":
        separator = sys.argv.index("--")
        train_and_dump(sys.argv[2], sys.argv[separator + 1:])
    else:
        raise SystemExit(f"unknown mode {sys.argv[1]}")
