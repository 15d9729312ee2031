"""ner/serving/ids.py and ner/serving/lowercase.py: the ids of words in numpy equal the graph
featurizer's (ner/model/features/featurizer.py), on made-up and adversarial words, generated
batches, every code point's lowercasing, and CoNLL-2003's test set where ../shared/data holds it.

Run as a script, this prints ner/serving/lowercase.py's tables as the installed TensorFlow makes them."""
import functools
import json
import os
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ner.config import Config
from ner.data.batching import padded_batch
from ner.data.conll import read_conll
from ner.data.schemes import SCHEMES, tag_names
from ner.data.vocabulary import RESERVED, Vocabulary, load_vocabulary
from ner.model.features.featurizer import Featurizer
from ner.serving import lowercase
from ner.serving.ids import IdMapper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONLL_TEST = os.path.join(ROOT, "..", "shared", "data", "conll2003", "test.txt")
TYPES = ["LOC", "PER"]
PROPERTIES = settings(database=None, derandomize=True, deadline=None, max_examples=200,
                      suppress_health_check=[HealthCheck.too_slow])
# Every code point but the surrogates (a str holding one cannot be UTF-8) and NUL (tested apart).
CODE_POINTS = [c for c in range(1, 0x110000) if not 0xD800 <= c < 0xE000]


def made_up(scheme="iobes", lowercase=True, max_word_length=4, casing_dim=4, words=("paris", "the", "σας", "i\u0307stanbul"),
            chars=("a", "P", "é", "\U0001f600", "\u0301")):
    vocab = Vocabulary(words=list(words), chars=list(chars), entity_types=TYPES, columns={1: ["NN", "NNP"], 2: ["B-NP"]},
                       meta={"lowercase": lowercase}, folder="")
    config = Config(casing_dim=casing_dim, feature_columns=[1, 2], max_word_length=max_word_length, tag_scheme=scheme)
    return vocab, config


def both(vocab, config):
    return Featurizer(vocab, config.tag_scheme, config.feature_columns, config.max_word_length), IdMapper(vocab, config)


def strings(array) -> tf.Tensor:
    """An array of str as a string tensor, each str UTF-8 (numpy's str arrays would drop trailing NULs)."""
    array = np.asarray(array, dtype=object)
    return tf.constant(np.array([w.encode() for w in array.ravel().tolist()], dtype=object).reshape(array.shape), tf.string)


def graph_inputs(featurizer, config, words, lengths, features):
    """The featurizer's ids, named and shaped as IdMapper.inputs gives them."""
    words_tensor = strings(words)
    inputs = {"word_ids": featurizer.word_ids(words_tensor).numpy(), "char_ids": featurizer.char_ids(words_tensor).numpy()}
    if config.casing_dim:
        inputs["shape_ids"] = featurizer.shape_ids(words_tensor).numpy()
    if config.feature_columns:
        columns = featurizer.column_ids(strings(features))
        inputs["column_ids"] = np.stack([c.numpy() for c in columns], axis=-1)
    inputs["lengths"] = np.asarray(lengths, np.int32)
    return inputs


def assert_same_ids(featurizer, mapper, config, words, lengths=None, features=None):
    words = np.asarray(words, dtype=object)
    if lengths is None:
        lengths = np.array([sum(1 for w in row if w) for row in words], np.int32)
    if features is None:
        features = np.full(words.shape + (len(config.feature_columns),), "", dtype=object)
    expected = graph_inputs(featurizer, config, words, lengths, features)
    found = mapper.inputs(words, lengths, features)
    assert list(found) == list(expected)
    for name, ids in expected.items():
        assert found[name].dtype == np.int32, name
        assert found[name].shape == ids.shape, name
        mismatch = np.argwhere(found[name] != ids)
        assert not len(mismatch), (name, [(words[tuple(at[:2])], found[name][tuple(at)], ids[tuple(at)])
                                          for at in mismatch[:5]])


def test_made_up_words_chars_shapes_and_columns():
    vocab, config = made_up()
    featurizer, mapper = both(vocab, config)
    words = [["Paris", "THE", "Rome", "ΣΑΣ", "İstanbul"], ["aé", "Pa\u0301", "\U0001f600x", "", ""]]
    features = np.array([[["NNP", "B-NP"], ["VB", ""], ["NN", "B-NP"], ["", ""], ["NN", "x"]],
                         [["NN", "B-NP"], ["", ""], ["", ""], ["", ""], ["", ""]]], dtype=object)
    assert_same_ids(featurizer, mapper, config, words, features=features)
    found = mapper.inputs(np.array(words, dtype=object), [5, 3], features)
    assert found["word_ids"].tolist() == [[RESERVED, RESERVED + 1, 1, RESERVED + 2, RESERVED + 3], [1, 1, 1, 0, 0]]
    assert found["char_ids"].shape == (2, 5, 4)  # cut at max_word_length
    assert found["shape_ids"].tolist()[0] == [3, 2, 3, 6, 5]


@pytest.mark.parametrize("lowercase_vocabulary", [True, False])
@pytest.mark.parametrize("max_word_length", [1, 3, 50])
def test_adversarial_words(lowercase_vocabulary, max_word_length):
    words = ["", "a", "A", "Σ", "ΑΣ", "ΑΣ.", "Σ'Α", "ΑΣ\u0345Β", "A\u0345Σ", "İ", "İİ", "ß", "ẞ", "ǅ", "Ⅻ", "\u2c2f",
             "\U00010570x", "Ab\x00C", "\x00", "\x00ΑΣ", "ΑΣ\x00Β", "e\u0301", "\u0301", "\U0001f468\u200d\U0001f469",
             "\U0001f1eb\U0001f1f7", "\U00020000", "Zürich", "ZÜRICH", "1,000", "12:30", "iPod", "x" * 80, "É" * 60,
             "a\nb", "1\n", "\t", " ", "\u200b", "\ufeff", "ﬁ", "Ꭰ", "ꭰ", "\U0001e900", "\U000e0067"]
    vocab, config = made_up(lowercase=lowercase_vocabulary, max_word_length=max_word_length,
                            words=sorted({lowercase.lower(w) for w in words} - {""})[::2])
    featurizer, mapper = both(vocab, config)
    rows = [words[i:i + 7] + [""] * (7 - len(words[i:i + 7])) for i in range(0, len(words), 7)]
    assert_same_ids(featurizer, mapper, config, rows)


def test_a_batch_of_nothing():
    vocab, config = made_up()
    featurizer, mapper = both(vocab, config)
    assert_same_ids(featurizer, mapper, config, np.full((2, 3), "", dtype=object))
    assert mapper.inputs(np.zeros((1, 0), dtype=object), [0], np.zeros((1, 0, 2), dtype=object))["char_ids"].shape == (1, 0, 0)


def test_a_character_vocabulary_entry_of_two_characters_is_refused_as_the_graph_refuses_it():
    vocab, config = made_up(chars=("a", "ab"))
    with pytest.raises(ValueError, match="line 2: 'ab' is not one character"):
        IdMapper(vocab, config)


TRICKY = "aAzZ09_.,:'-ΣσςΑΒİıiIßẞǅ\u0301\u0345\u0307\u200d\u00ad\U0001f600\U00010570\u2c2f\x00\n\t É"
words = st.text(st.sampled_from(TRICKY) | st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)


@PROPERTIES
@given(st.lists(st.lists(words, min_size=1, max_size=6), min_size=1, max_size=4), st.integers(1, 6), st.booleans())
@example([["ΑΣ\u0345"]], 2, True)
def test_generated_batches(rows, max_word_length, lowercase_vocabulary):
    width = max(map(len, rows))
    rows = [row + [""] * (width - len(row)) for row in rows]
    vocabulary_words = sorted({lowercase.lower(w) if lowercase_vocabulary else w for row in rows for w in row} - {""})
    vocab, config = made_up(lowercase=lowercase_vocabulary, max_word_length=max_word_length, words=vocabulary_words[::2],
                            chars=sorted({c for row in rows for w in row for c in w} - {"\x00"})[::2])
    featurizer, mapper = both(vocab, config)
    features = np.array([[[w[:2], w[-2:]] for w in row] for row in rows], dtype=object)
    assert_same_ids(featurizer, mapper, config, rows, features=features)


def tf_lower(words: list[str]) -> list[str]:
    return [w.decode() for w in tf.strings.lower(tf.constant([w.encode() for w in words]), encoding="utf-8").numpy()]


@functools.cache
def in_context(context: str) -> tuple[list[str], list[str]]:
    """Every code point put in context ("A{}Σ"), and TensorFlow's lowercasing of each."""
    texts = [context.format(chr(c)) for c in CODE_POINTS]
    return texts, tf_lower(texts)


def test_every_code_point_lowercases_as_tensorflow_does_alone_and_around_a_capital_sigma():
    """Alone; then after Σ, before it, and between cased letters: what decides the final sigma."""
    for context in ("{}", "{}Σ", "A{}Σ", "AΣ{}", "AΣ{}B", "Σ{}"):
        texts, expected = in_context(context)
        found = [lowercase.lower(text) for text in texts]
        assert found == expected, [(t, f, e) for t, f, e in zip(texts, found, expected) if f != e][:5]


def test_word_ids_of_every_code_point_as_the_graph_gives_them():
    words = [chr(c) for c in CODE_POINTS]
    vocab, config = made_up(words=sorted(set(tf_lower(words[::2]))), casing_dim=0)
    featurizer, mapper = both(vocab, config)
    batch = np.array(words, dtype=object).reshape(-1, 1)
    assert (mapper.word_ids(batch) == featurizer.word_ids(strings(batch)).numpy()).all()


def tensorflow_case_tables() -> dict[str, str]:
    """lowercase.py's tables as TensorFlow's lowercasing gives them (probing every code point)."""
    def ends_in_final_sigma(context):
        return {c for c, w in zip(CODE_POINTS, in_context(context)[1]) if w[-1] == "ς"}
    mapping = dict(zip(CODE_POINTS, in_context("{}")[1]))
    cased = ends_in_final_sigma("{}Σ")  # passed over if case-ignorable, else final when cased
    case_ignorable = ends_in_final_sigma("A{}Σ") - cased
    runs = []  # [first, count, step, delta]
    for code, lowered in sorted(mapping.items()):
        if len(lowered) != 1 or lowered == chr(code):
            continue
        delta = ord(lowered) - code
        if runs and runs[-1][3] == delta and (runs[-1][1] == 1 and code - runs[-1][0] in (1, 2)
                                              or code == runs[-1][0] + runs[-1][1] * runs[-1][2]):
            runs[-1] = [runs[-1][0], runs[-1][1] + 1, code - runs[-1][0] if runs[-1][1] == 1 else runs[-1][2], delta]
        else:
            runs.append([code, 1, 1, delta])

    def ranges(codes):
        found = []
        for code in sorted(codes):
            if found and found[-1][1] == code - 1:
                found[-1][1] = code
            else:
                found.append([code, code])
        return " ".join(f"{a:x}-{b:x}" if a != b else f"{a:x}" for a, b in found)
    return {"LOWERCASE": " ".join(f"{a:x}:{n:x}:{s:x}:{d:+x}" if n > 1 else f"{a:x}:{d:+x}" for a, n, s, d in runs),
            "LOWERCASE_SPECIAL": {c: w for c, w in mapping.items() if len(w) > 1},
            "CASED": ranges(cased), "CASE_IGNORABLE": ranges(case_ignorable)}


def python_source(tables: dict) -> str:
    lines = []
    for name, value in tables.items():
        if isinstance(value, dict):
            lines.append(f"{name} = {{{', '.join(f'0x{c:X}: {json.dumps(w)}' for c, w in value.items())}}}")
        else:
            wrapped = textwrap.wrap(value, 120)
            lines.append(f"{name} = (\n" + "".join(f'    "{line} "\n' for line in wrapped[:-1]) + f'    "{wrapped[-1]}")')
    return "\n".join(lines)


def test_lowercase_tables_are_tensorflows():
    tables = tensorflow_case_tables()
    found = {name: getattr(lowercase, name) for name in tables}
    assert found == tables, "TensorFlow lowercases otherwise now: ner/serving/lowercase.py's tables are\n" + python_source(
        tables)


@pytest.fixture(scope="module")
def conll_vocabulary(emb_dir):
    return load_vocabulary(emb_dir)


@pytest.mark.skipif(not os.path.isfile(CONLL_TEST), reason="CoNLL-2003 is not in ../shared/data")
def test_conll2003_test_set(conll_vocabulary):
    config = Config(casing_dim=4, feature_columns=[1, 2], max_word_length=20)
    featurizer, mapper = both(conll_vocabulary, config)
    sentences = [s for s in read_conll(CONLL_TEST) if not s.docstart]
    for start in range(0, len(sentences), 512):
        batch = padded_batch(sentences[start:start + 512], config.feature_columns)
        assert_same_ids(featurizer, mapper, config, batch["words"], batch["lengths"], batch["features"])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_decoded_tag_ids_become_the_graphs_iob2_tags(scheme):
    vocab, config = made_up(scheme)
    featurizer, mapper = both(vocab, config)
    ids = np.random.default_rng(0).integers(0, len(tag_names(TYPES, scheme)), (50, 9))
    assert mapper.iob2_tags(ids).tolist() == featurizer.iob2_tags(tf.constant(ids, tf.int32)).numpy().tolist()
    if scheme == "iob1":  # an I- tag that opens a chunk is its B-
        names = tag_names(TYPES, scheme)
        row = [names.index(t) for t in ("I-LOC", "I-LOC", "I-PER", "O", "B-PER", "I-PER")]
        assert mapper.iob2_tags(np.array([row])).tolist() == [[b"B-LOC", b"I-LOC", b"B-PER", b"O", b"B-PER", b"I-PER"]]


if __name__ == "__main__":
    sys.stdout.write(python_source(tensorflow_case_tables()) + "\n")
