"""Building blocks: masking and padding invariance, checked against direct computation."""
import numpy as np
import pytest
import tensorflow as tf

from ner.model.encoders.bilstm import BiLSTM
from ner.model.features.char_cnn import CharCNN
from ner.model.features.embedding import WordEmbedding
from ner.model.heads.softmax import SoftmaxHead


def test_char_cnn_ignores_padding_and_zeroes_empty_words():
    tf.random.set_seed(0)
    cnn = CharCNN(num_chars=10, char_dim=4, filters=5, kernel=3)
    word = [3, 4, 5]
    short = cnn(tf.constant([[word, [0, 0, 0]]]))
    long = cnn(tf.constant([[word + [0, 0, 0, 0], [0] * 7]]))
    np.testing.assert_allclose(short.numpy(), long.numpy(), atol=1e-6)
    assert not short.numpy()[0, 1].any()
    # Max pooling over the word's own positions, computed directly.
    table, kernel, bias = cnn.embedding.table.numpy(), cnn.kernel.numpy(), cnn.bias.numpy()
    padded = np.concatenate([np.zeros((1, 4)), table[word], np.zeros((1, 4))])
    positions = [sum(padded[i + k] @ kernel[k] for k in range(3)) + bias for i in range(3)]
    np.testing.assert_allclose(short.numpy()[0, 0], np.max(positions, axis=0), atol=1e-5)


def test_bilstm_output_does_not_depend_on_padding():
    tf.random.set_seed(0)
    lstm = BiLSTM(input_dim=6, units=5, layers=2, dropout=0.5)
    sentence = tf.random.normal([1, 4, 6])
    alone = lstm(sentence, tf.constant([4]), training=False)
    garbage = tf.random.normal([2, 9, 6]) * 10
    batch = tf.concat([tf.concat([sentence, garbage[:1, :5]], axis=1), garbage[1:]], axis=0)
    together = lstm(batch, tf.constant([4, 9]), training=False)
    np.testing.assert_allclose(alone.numpy()[0], together.numpy()[0, :4], atol=1e-5)


def test_bilstm_backward_direction_starts_at_each_sentence_end():
    tf.random.set_seed(1)
    lstm = BiLSTM(input_dim=3, units=4, layers=1, dropout=0.0)
    x = tf.random.normal([1, 3, 3])
    full = lstm(x, tf.constant([3]), training=False).numpy()
    only_last = lstm(x[:, 2:], tf.constant([1]), training=False).numpy()
    np.testing.assert_allclose(full[0, 2, 4:], only_last[0, 0, 4:], atol=1e-6)  # backward state at the end
    only_first = lstm(x[:, :1], tf.constant([1]), training=False).numpy()
    np.testing.assert_allclose(full[0, 0, :4], only_first[0, 0, :4], atol=1e-6)  # forward state at the start


def test_word_embedding_trains_vectors_only_for_missing_words():
    pretrained = np.arange(12, dtype=np.float32).reshape(6, 2)
    pretrained[4:] = 0  # the last two rows are train-only words
    embedding = WordEmbedding(pretrained, num_oov=2, trainable=False, train_oov=True)
    out = embedding(tf.constant([[0, 3, 4, 5]])).numpy()
    np.testing.assert_array_equal(out[0, 1], pretrained[3])
    np.testing.assert_array_equal(out[0, 2:], embedding.oov.numpy())
    assert [v.name for v in embedding.trainable_variables] == ["oov:0"]
    zero = WordEmbedding(pretrained, num_oov=2, trainable=True, train_oov=False)
    assert not zero(tf.constant([5])).numpy().any() and zero.oov is None


def test_softmax_head_likelihood_and_decode():
    emissions = tf.constant([[[1.0, 2.0, 0.5], [0.0, -1.0, 3.0], [9.0, 9.0, 9.0]]])
    tags = tf.constant([[1, 0, 2]])
    head = SoftmaxHead(3)
    log_probs = emissions.numpy() - np.log(np.exp(emissions.numpy()).sum(-1, keepdims=True))
    expected = log_probs[0, 0, 1] + log_probs[0, 1, 0]  # the third position is padding
    assert head.log_likelihood(emissions, tags, tf.constant([2])).numpy()[0] == pytest.approx(expected, rel=1e-6)
    decoded, _ = head.decode(emissions, tf.constant([2]))
    assert decoded.numpy().tolist() == [[1, 2, 0]]


def reference_lstm(x, kernel, bias, forget_bias):
    """Step-by-step LSTM in numpy, gate blocks ordered input, cell, forget, output."""
    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    h = c = np.zeros((x.shape[1], kernel.shape[1] // 4))
    outputs = []
    for x_t in x:
        i, g, f, o = np.split(np.concatenate([x_t, h], 1) @ kernel + bias, 4, axis=1)
        c = sigmoid(f + forget_bias) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        outputs.append(h)
    return np.stack(outputs)


def test_lstm_direction_matches_reference_and_its_gradient_matches_finite_differences():
    from ner.model.encoders.bilstm import FORGET_BIAS, LSTMDirection
    tf.random.set_seed(0)
    lstm = LSTMDirection(input_dim=3, units=4, name="lstm")
    lstm.bias.assign(tf.random.normal([16]) * 0.3)
    x = tf.random.normal([5, 2, 3])
    steps, zeros = tf.constant(5, tf.int64), tf.zeros([2, 4])
    np.testing.assert_allclose(lstm(x, steps, zeros).numpy(), reference_lstm(x.numpy(), lstm.kernel.numpy(), lstm.bias.numpy(),
                                                               FORGET_BIAS), atol=1e-5)

    def loss(kernel):
        lstm.kernel.assign(kernel)
        return float(tf.reduce_sum(lstm(x, steps, zeros) ** 2))
    kernel = lstm.kernel.numpy()
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(lstm(x, steps, zeros) ** 2)
    analytic = tape.gradient(value, lstm.kernel).numpy()
    numeric = np.zeros_like(kernel)
    eps = 1e-2
    for index in np.ndindex(*kernel.shape):
        step = np.zeros_like(kernel)
        step[index] = eps
        numeric[index] = (loss(kernel + step) - loss(kernel - step)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, atol=2e-3)
