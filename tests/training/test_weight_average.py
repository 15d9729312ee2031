"""weight_average: the moving average's arithmetic, the swap, and that training evaluates and
saves the averaged weights while it keeps training the raw ones."""
import os

import numpy as np
import tensorflow as tf

from ner.training.weight_average import WeightAverage


def test_update_follows_the_decay_schedule():
    variable = tf.Variable([1.0, -2.0])
    average = WeightAverage([variable], decay=0.9)
    expected = np.array([1.0, -2.0])
    for step, value in enumerate([[3.0, 0.0], [5.0, 4.0], [-1.0, 2.0]]):
        variable.assign(value)
        average.update(tf.constant(step, tf.int64))
        decay = min(0.9, (1 + step) / (10 + step))
        expected = decay * expected + (1 - decay) * np.array(value)
        np.testing.assert_allclose(average.averages[0].numpy(), expected, rtol=1e-6)


def test_swapped_in_exchanges_and_restores():
    variable = tf.Variable([1.0, 2.0])
    average = WeightAverage([variable], decay=0.5)
    average.averages[0].assign([7.0, 8.0])
    with average.swapped_in():
        np.testing.assert_array_equal(variable.numpy(), [7.0, 8.0])
    np.testing.assert_array_equal(variable.numpy(), [1.0, 2.0])
    np.testing.assert_array_equal(average.averages[0].numpy(), [7.0, 8.0])


def test_training_saves_the_averaged_weights_as_the_best_model(corpus_dir, emb_dir, tmp_path):
    from ner.config import Config
    from ner.data.conll import read_conll
    from ner.serving.loaders import load_checkpoint
    from ner.training.run import make_trainer
    config = Config().replace(lstm_units=8, char_filters=4, char_dim=4, casing_dim=2, batch_size=16, epochs=1,
                              weight_averaging=0.9, eval_batch_size=64)
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "train.txt")) if not s.docstart]
    trainer = make_trainer(config, emb_dir, str(tmp_path / "model"))
    trainer.fit(sentences[:64], sentences[:16], "iob2")
    saved = load_checkpoint(str(tmp_path / "model"))
    for variable, average, raw in zip(saved.trainable_variables, trainer.average.averages, trainer.variables):
        np.testing.assert_array_equal(variable.numpy(), average.numpy())
    assert any(not np.array_equal(a.numpy(), r.numpy()) for a, r in zip(trainer.average.averages, trainer.variables))
