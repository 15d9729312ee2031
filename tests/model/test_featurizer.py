import random

import pytest
import tensorflow as tf

from ner.data.schemes import SCHEMES, convert_tags
from ner.data.vocabulary import RESERVED, Vocabulary
from ner.model.features.featurizer import Featurizer

TYPES = ["LOC", "PER"]


def featurizer(scheme="iobes", lowercase=True, max_word_length=4):
    vocab = Vocabulary(words=["paris", "the"], chars=["a", "P", "é"], entity_types=TYPES,
                       columns={1: ["NN", "NNP"]}, meta={"lowercase": lowercase}, folder="")
    return Featurizer(vocab, scheme, [1], max_word_length)


def test_words_chars_and_columns_map_to_ids_with_padding_and_unknown():
    f = featurizer()
    words = tf.constant([["Paris", "THE", "Rome"], ["aé", "", ""]])
    assert f.word_ids(words).numpy().tolist() == [[RESERVED, RESERVED + 1, 1], [1, 0, 0]]
    assert featurizer(lowercase=False).word_ids(words).numpy().tolist()[0] == [1, 1, 1]
    chars = f.char_ids(words).numpy()
    assert chars.shape == (2, 3, 4)  # the longest word, "Paris", is cut at max_word_length
    assert chars[0, 0].tolist() == [RESERVED + 1, RESERVED, 1, 1]  # P a r i
    assert chars[1, 0].tolist() == [RESERVED, RESERVED + 2, 0, 0] and not chars[1, 1].any()
    columns = f.column_ids(tf.constant([[["NNP"], ["VB"], [""]]]))
    assert columns[0].numpy().tolist() == [[RESERVED + 1, 1, 0]]


def test_chars_are_code_points_and_invalid_utf8_reads_as_the_replacement_character():
    vocab = Vocabulary(words=[], chars=["a", "\ufffd", "€"], entity_types=TYPES, columns={}, meta={"lowercase": True},
                       folder="")
    f = Featurizer(vocab, "iobes", [], max_word_length=5)
    words = tf.constant([[b"a\xffa", "€x".encode()], [b"", b""]])
    assert f.char_ids(words).numpy().tolist() == [[[RESERVED, RESERVED + 1, RESERVED], [RESERVED + 2, 1, 0]],
                                                  [[0, 0, 0], [0, 0, 0]]]
    assert f.char_ids(tf.zeros([1, 0], tf.string)).shape == (1, 0, 0)
    with pytest.raises(ValueError, match="line 2: 'ab' is not one character"):
        Featurizer(Vocabulary(words=[], chars=["a", "ab"], entity_types=TYPES, columns={}, meta={"lowercase": True},
                              folder=""), "iobes", [], max_word_length=5)


def test_word_shapes():
    ids = Featurizer.shape_ids(tf.constant([["the", "EU", "Paris", "1996", "iPod", "--", ""]])).numpy()
    assert ids.tolist() == [[1, 2, 3, 4, 5, 6, 0]]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_decoded_ids_come_out_as_the_same_chunks_in_iob2(scheme):
    f = featurizer(scheme)
    names = f.tag_names
    rng = random.Random(0)
    for _ in range(200):
        spans, position = [], 0
        while position < 8:
            length = rng.randint(1, 3)
            if rng.random() < 0.6:
                spans.append((rng.choice(TYPES), position, position + length))
            position += length
        iob2 = ["O"] * position
        for kind, start, end in spans:
            iob2[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        tags = convert_tags(iob2, "iob2", scheme)
        ids = tf.constant([[names.index(t) for t in tags]])
        assert [t.decode() for t in f.iob2_tags(ids).numpy()[0]] == iob2, tags
