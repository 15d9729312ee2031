"""ner/serving/text_tokens.py: raw text tokenized without TensorFlow gives the tokenizer graph's
tokens and offsets (ner/data/tokenizer.py) on every text of tests/data/test_tokenizer.py's cases,
on generated text, and on CoNLL-2003's test set as raw text where ../shared/data holds it."""
import importlib.util
import json
import os
import subprocess
import sys
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ner.data.conll import read_conll
from ner.data.tokenizer import fewest_tokens, tokenize_texts, tokenizer_patterns
from ner.serving.text_tokens import TextTokenizer, default_tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONLL_TEST = os.path.join(ROOT, "..", "shared", "data", "conll2003", "test.txt")
PROPERTIES = settings(database=None, derandomize=True, deadline=None, max_examples=300,
                      suppress_health_check=[HealthCheck.too_slow])


def tokenizer_test_texts() -> list[str]:
    """Every str that tests/data/test_tokenizer.py tokenizes in a parametrized case or keeps as a
    constant (its emoji, its TRICKY characters), each also in NFC and NFD: new cases there count
    here too."""
    path = os.path.join(ROOT, "tests", "data", "test_tokenizer.py")
    spec = importlib.util.spec_from_file_location("tokenizer_cases", path)
    cases = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cases)
    texts = [value for value in vars(cases).values() if isinstance(value, str)]
    for function in vars(cases).values():
        for mark in getattr(function, "pytestmark", []):
            if mark.name == "parametrize":
                for case in mark.args[1]:
                    texts += [value for value in (case if isinstance(case, tuple) else (case,)) if isinstance(value, str)]
    texts += [" ".join(texts), "".join(texts)]
    return sorted({unicodedata.normalize(form, text) for text in texts for form in ("NFC", "NFD")} | set(texts))


def test_the_tokenizer_tests_texts():
    texts = tokenizer_test_texts()
    assert len(texts) > 60  # the cases were found
    assert default_tokenizer().tokenize(texts) == tokenize_texts(texts)


def test_a_folders_copy_of_the_patterns_tokenizes_alike():
    """tokenizer_patterns as JSON (what a folder keeps) makes the same tokenizer."""
    texts = ["I don't know.", "Zu\u0308rich \U0001f1eb\U0001f1f7", "U.S. 3.5 can't", "\u0915\u094d\u0937 a\r\nb"]
    copy = TextTokenizer(json.loads(json.dumps(tokenizer_patterns())))
    assert copy.tokenize(texts) == tokenize_texts(texts)


# Besides test_tokenizer.py's: bidi marks and isolates, controls, CR LF, Hangul, Indic, emoji parts.
TRICKY = ("aZ1_.,:'\u2019-n't \t\r\n\x00\x01\x1b\x7f\x85\u00a0\u0308\u0301\u20e3\u093f\u094d\u0928\u0937\u200d\u200c"
          "\u200b\ufeff\u2060\u00ad\u200e\u200f\u202a\u202b\u202e\u2066\u2067\u2069\u061c\U0001f1eb\U0001f1f7\U0001f468"
          "\U0001f3fd\ufe0f\u1100\u1161\u11a8\uac00\u0600\u0d4e\U000e0067\U000e007f\u0e33\u0e49\u05d0\u0627\u2028\u3000")
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(TRICKY), max_size=60)


@PROPERTIES
@given(st.lists(texts, min_size=1, max_size=3))
@example(["\r\n\r\r\n", "a\u200db", "\x00\u0301", "\u0600\u0600", "\u0600 x"])
def test_generated_text(batch):
    found = default_tokenizer().tokenize(batch)
    assert found == tokenize_texts(batch)
    assert all(fewest_tokens(text) <= len(tokens) for text, tokens in zip(batch, found))


def test_a_surrogate_is_refused_as_the_graph_refuses_it():
    with pytest.raises(UnicodeEncodeError):
        tokenize_texts(["a\ud800"])
    with pytest.raises(UnicodeEncodeError):
        default_tokenizer().tokenize(["a\ud800"])


@pytest.mark.skipif(not os.path.isfile(CONLL_TEST), reason="CoNLL-2003 is not in ../shared/data")
def test_conll2003_test_set_as_raw_text():
    lines = [" ".join(sentence.words) for sentence in read_conll(CONLL_TEST)]
    assert default_tokenizer().tokenize(lines) == tokenize_texts(lines)


# Where importing tensorflow fails, and leaves the stack that tried in $TENSORFLOW_IMPORTS.
FAKE_TENSORFLOW = """import os, traceback
with open(os.environ["TENSORFLOW_IMPORTS"], "a") as f:
    f.write("".join(traceback.format_stack()) + "\\n")
raise ImportError("no TensorFlow here")
"""
WITHOUT_TENSORFLOW = """import io, sys
import numpy as np
import ner.beam.pipeline, ner.service.http, ner.serving.onnx_tagger, ner.serving.tag_file
from ner.beam.pipeline import text_records
from ner.config import Config
from ner.data.vocabulary import load_vocabulary
from ner.serving.ids import IdMapper
from ner.serving.text_tokens import tokenize_texts

tokens = tokenize_texts(["Anka Velmar went to Zu\\u0308rich ."])[0]
words = np.array([[token for token, _, _ in tokens]], dtype=object)
mapper = IdMapper(load_vocabulary(sys.argv[1]), Config(casing_dim=4, feature_columns=[1, 2]))
inputs = mapper.inputs(words, [len(tokens)], np.full(words.shape + (2,), "NN", dtype=object))
records = list(text_records(io.BytesIO(b"Peter went home.\\n\\nIt rains.\\n"), "in.txt"))
print(len(tokens), sorted(inputs), len(records))
"""


def test_the_serving_path_runs_without_tensorflow(emb_dir, tmp_path):
    """Tokens, ids, and the modules that inference.py, serve.py and beam_tag.py tag through, where
    importing tensorflow fails: nothing tries."""
    (tmp_path / "tensorflow").mkdir()
    (tmp_path / "tensorflow" / "__init__.py").write_text(FAKE_TENSORFLOW)
    tried = tmp_path / "tensorflow_imports.txt"
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "TENSORFLOW_IMPORTS": str(tried)}
    done = subprocess.run([sys.executable, "-c", WITHOUT_TENSORFLOW, emb_dir], capture_output=True, text=True, cwd=ROOT,
                          env=env)
    assert not tried.exists(), tried.read_text()
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["6", "['char_ids',", "'column_ids',", "'lengths',", "'shape_ids',", "'word_ids']", "2"]
