"""Fuzzing with hypothesis: the CoNLL reader, the raw-text reader, the service's request parser, the
tagger and the C++ runner get random bytes, random column counts, huge lines, empty files and mixed
line ends. Each answers with a clear error (file:line: what was expected) or the right result,
never another exception or a crash. Runs are derandomized so that CI is repeatable."""
import json
import string

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_cc import MAX_LINE_BYTES, cc_build, tagger  # noqa: F401  (cc_build is a fixture)

from ner.data.conll import DOCSTART, InputError, Sentence, parse_conll
from ner.data.render import render_conll
from ner.data.schemes import convert_tags
from ner.data.text import parse_text, text_sentences
from ner.data.tokenizer import tokenize_texts
from ner.model.tagging import tag_sentences
from ner.service import http
from ner.serving.loaders import load_model

FUZZ = settings(database=None, derandomize=True, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# A field: any text without ASCII whitespace (which separates columns), now and then a huge one.
small_fields = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",), exclude_characters=string.whitespace),
                       min_size=1, max_size=8)
huge_fields = st.integers(MAX_LINE_BYTES - 10, MAX_LINE_BYTES + 10).map(lambda n: "w" * n)
fields = st.one_of(small_fields, small_fields, small_fields, small_fields, huge_fields)


@st.composite
def conll_files(draw, max_sentences=5):
    """(bytes, the token lines as field tuples per sentence, uniform): sentences of lines of fields,
    separated by runs of blank (or whitespace-only) lines, each line ended by \\n or \\r\\n, columns
    joined by spaces or tabs; uniform files keep one column count."""
    uniform = draw(st.booleans())
    width = draw(st.integers(1, 4))
    sentences = []
    for _ in range(draw(st.integers(0, max_sentences))):
        lines = []
        for _ in range(draw(st.integers(1, 5))):
            count = width if uniform else draw(st.integers(1, 5))
            lines.append(tuple(draw(fields.filter(lambda f: f != DOCSTART)) for _ in range(count)))
        sentences.append(lines)
    out = ["\ufeff" if draw(st.booleans()) else ""]
    for number, lines in enumerate(sentences):
        blank = draw(st.sampled_from(["", " ", "\t ", "  \t"]))
        out.append("".join(blank + draw(st.sampled_from(["\n", "\r\n"]))
                           for _ in range(draw(st.integers(1 if number else 0, 3)))))
        for line in lines:
            separator = "\t" if draw(st.booleans()) else draw(st.sampled_from([" ", "  ", " \u00a0 "[:1]]))
            trailing = "" if separator == "\t" else draw(st.sampled_from(["", " "]))
            out.append(separator.join(line) + trailing + draw(st.sampled_from(["\n", "\r\n"])))
    text = "".join(out)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no line end at the end of the file
    return text.encode("utf-8"), sentences, uniform


def expected_error_line(data: bytes, sentences, model_columns: int | None = None) -> int | None:
    """The first line that every reader (Python's and the C++ runner's) refuses: one over the line
    limit (counted with its "\r"), one holding a NUL (no C string carries it), a token line whose
    column count differs from the first token line's, or, for a model that reads `model_columns`,
    one with more columns whose last (the gold column) holds no tag."""
    lines = data.split(b"\n")
    bad = [n for n, line in enumerate(lines, 1) if len(line) > MAX_LINE_BYTES or b"\x00" in line]
    counts = [len(line) for lines_ in sentences for line in lines_]
    token_line = 0
    for number, raw in enumerate(lines, 1):
        if raw.strip(string.whitespace.encode() + b"\xef\xbb\xbf"):
            last = [line for lines_ in sentences for line in lines_][token_line][-1]
            no_tag = model_columns is not None and counts[token_line] > model_columns and not (
                last == "O" or (len(last) > 2 and last[0] in "BIES" and last[1] == "-"))
            if counts[token_line] != counts[0] or no_tag:
                bad.append(number)
                break
            token_line += 1
    return min(bad, default=None)


@FUZZ
@given(conll_files())
@example((b"", [], True))
def test_reader_returns_the_sentences_or_names_the_bad_line(generated):
    data, sentences, uniform = generated
    expected_line = expected_error_line(data, sentences)
    if expected_line is None:
        parsed = parse_conll(data, "f.txt", tagged=False)
        assert [list(s.columns) for s in parsed] == sentences
    else:
        with pytest.raises(InputError) as error:
            parse_conll(data, "f.txt", tagged=False)
        assert error.value.line == expected_line
        assert str(error.value).startswith(f"f.txt:{expected_line}: expected ")


@FUZZ
@given(st.binary(max_size=400) | st.lists(st.sampled_from([b"a", b"B-X", b"O", b" ", b"\t", b"\n", b"\r", b"\r\n", b"\xff",
                                                             b"-DOCSTART-", b"\xef\xbb\xbf", b"I-", b"\x00"]),
                                            max_size=60).map(b"".join))
def test_reader_on_random_bytes_gives_sentences_or_a_clear_error(data):
    for tagged in (True, False):
        try:
            parsed = parse_conll(data, "f.txt", tagged)
        except InputError as e:
            assert str(e).startswith(f"f.txt:{e.line}: expected ") and 1 <= e.line <= data.count(b"\n") + 1
            continue
        widths = {len(fields) for s in parsed if not s.docstart for fields in s.columns}
        assert len(widths) <= 1 and all(all(fields) for s in parsed if not s.docstart for fields in s.columns)
        if tagged:
            assert all(tag == "O" or tag[1:2] == "-" for s in parsed if not s.docstart for tag in s.tags)


@FUZZ
@given(st.binary(max_size=300) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_raw_text_reader_gives_sentences_or_a_clear_error(data):
    try:
        lines = parse_text(data, "in.txt")
    except InputError as e:
        assert str(e).startswith(f"in.txt:{e.line}: expected UTF-8 text")
        return
    assert all(line.text.strip() for line in lines)
    for item in text_sentences(lines, tokenize_texts):
        assert all(item.text[start:end] == word for word, (start, end) in zip(item.sentence.words, item.offsets))


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=30)
request_like = st.fixed_dictionaries({}, optional={"text": json_values, "tokens": json_values, "sentences": json_values})


@FUZZ
@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode())
       | request_like.map(lambda v: json.dumps(v).encode()))
def test_service_request_parser_accepts_or_explains(body):
    limits = http.Limits(max_sentences=8, max_tokens=16, max_text_chars=200)
    for feature_columns in ([], [1, 2]):
        try:
            work = http.parse_request(body, limits, feature_columns, tokenize_texts)
            work.sentences()  # tokenizes raw texts, then checks their token limit
        except http.RequestError as e:
            assert e.status in (400, 413) and e.message
            continue
        items = work.items
        assert len(items) <= 8
        for item in items:
            assert len(item.sentence) <= 16 and all(all(f) for f in item.sentence.columns)
            assert all(len(f) > max(feature_columns, default=0) for f in item.sentence.columns)


@pytest.fixture(scope="module")
def tiny_tagger(model_dir):
    return load_model(model_dir)


words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40) | huge_fields.map(
    lambda w: w[:3000])


@settings(FUZZ, max_examples=40, suppress_health_check=list(HealthCheck))
@given(st.lists(st.lists(words, min_size=1, max_size=30), min_size=1, max_size=6))
def test_tagger_tags_any_strings_and_batching_does_not_change_tags(tiny_tagger, word_lists):
    sentences = [Sentence(tuple(w), tuple((x,) for x in w), 1) for w in word_lists]
    together = tag_sentences(tiny_tagger, sentences, "iob2", batch_size=4)
    names = set(tiny_tagger.tag_names) | {"O"}
    for sentence, (tags, confidence) in zip(sentences, together):
        assert len(tags) == len(confidence) == len(sentence)
        assert set(tags) <= names and convert_tags(tags, "iob2", "iob2") == tags
        assert np.all((confidence >= 0) & (confidence <= 1 + 1e-6))
    for sentence, (tags, confidence) in zip(sentences, together):
        alone_tags, alone_confidence = tag_sentences(tiny_tagger, [sentence], "iob2", batch_size=1)[0]
        assert alone_tags == tags
        np.testing.assert_allclose(alone_confidence, confidence, atol=1e-5)


@pytest.fixture(scope="module")
def frozen_python(frozen_dir):
    return load_model(frozen_dir)


@settings(FUZZ, max_examples=12, suppress_health_check=list(HealthCheck))
@given(conll_files(max_sentences=3))
@example((b"", [], True))
def test_cc_runner_on_the_same_corpus_matches_python_or_names_the_line(cc_build, frozen_dir, frozen_python, generated):  # noqa: F811
    data, sentences, _ = generated
    done = tagger(cc_build, frozen_dir, data)
    assert done.returncode in (0, 1), done.stderr.decode(errors="replace")  # a signal would be negative
    first_error = expected_error_line(data, sentences, model_columns=1)
    if first_error is None:
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        parsed = parse_conll(data, "<stdin>", tagged=False)
        results = tag_sentences(frozen_python, parsed, "iob2", 8) if parsed else []
        assert done.stdout.decode() == render_conll(parsed, results)
    else:
        assert done.returncode == 1
        assert f"<stdin>:{first_error}: expected ".encode() in done.stderr
