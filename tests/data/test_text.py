"""Raw text: one sentence per line, blank lines between documents; lines -> sentences of tokens."""
import pytest

from ner.data.conll import InputError
from ner.data.documents import document_contexts
from ner.data.limits import Limits
from ner.data.text import DocumentEnd, TextLine, check_tokens, iter_text, parse_text, text_sentences


def split_on_spaces(texts):
    """A stand-in for a model's tokenize: each space-separated word with its character offsets."""
    tokenized = []
    for text in texts:
        tokens, position = [], 0
        for word in text.split():
            start = text.index(word, position)
            position = start + len(word)
            tokens.append((word, start, position))
        tokenized.append(tokens)
    return tokenized


def test_blank_lines_end_documents_and_a_run_of_them_ends_one():
    data = b"\n  \nAnna flew .\nShe landed .\n\n\n \t\nBob ran .\n\nEve sat .\n\n"
    assert parse_text(data, "in.txt") == [TextLine("Anna flew .", 3, 0), TextLine("She landed .", 4, 0),
                                          TextLine("Bob ran .", 8, 1), TextLine("Eve sat .", 10, 2)]


def test_a_text_without_blank_lines_is_one_document():
    lines = parse_text(b"one\ntwo\r\nthree\n", "in.txt")
    assert [(line.text, line.document) for line in lines] == [("one", 0), ("two", 0), ("three", 0)]


def test_lines_end_at_newlines_only_and_lose_a_carriage_return_before_one():
    # As the C++ runner and a pipe read them: a lone "\r" (or "\x85", "\u2028") is inside its line.
    lines = parse_text("a\rb\r\nc\x0bd\u2028e\n\r\nf\r".encode(), "in.txt")
    assert lines == [TextLine("a\rb", 1, 0), TextLine("c\x0bd\u2028e", 2, 0), TextLine("f", 4, 1)]
    assert list(iter_text([b"a\rb\r", b"c"], "in.txt")) == [TextLine("a\rb", 1, 0), TextLine("c", 2, 0)]


def test_document_ends_come_out_at_the_blank_line_that_ends_a_document():
    items = list(iter_text([b"", b"a", b"b", b"", b"", b"c", b""], "in.txt", document_ends=True))
    assert items == [TextLine("a", 2, 0), TextLine("b", 3, 0), DocumentEnd(4), TextLine("c", 6, 1), DocumentEnd(7)]
    # Without document_ends the same lines, and no marks.
    assert list(iter_text([b"", b"a", b"b", b"", b"", b"c", b""], "in.txt")) == [
        item for item in items if not isinstance(item, DocumentEnd)]


def test_a_line_that_is_not_utf8_comes_out_in_place_and_ends_no_document():
    items = list(iter_text([b"a", b"\xff", b"b", b"", b"c"], "in.txt"))
    assert items[0] == TextLine("a", 1, 0)
    assert isinstance(items[1], InputError) and str(items[1]).startswith("in.txt:2: expected UTF-8")
    assert items[2:] == [TextLine("b", 3, 0), TextLine("c", 5, 1)]
    with pytest.raises(InputError, match="^in.txt:2: "):
        parse_text(b"a\n\xff\n", "in.txt")


def test_sentences_carry_their_lines_document_and_contexts_stay_in_it():
    lines = parse_text(b"Anna flew home .\nShe landed .\n\nBob ran .\n", "in.txt")
    sentences = text_sentences(lines, split_on_spaces)
    assert [s.sentence.document for s in sentences] == [0, 0, 1]
    assert [s.sentence.words for s in sentences] == [("Anna", "flew", "home", "."), ("She", "landed", "."),
                                                    ("Bob", "ran", ".")]
    assert sentences[1].offsets == ((0, 3), (4, 10), (11, 12))
    assert document_contexts([s.sentence for s in sentences], 3) == [
        ((), ("She", "landed", ".")), (("flew", "home", "."), ()), ((), ())]
    assert document_contexts([s.sentence for s in sentences], 0) == [((), ())] * 3


# --- CoNLL given as raw text, and the limits (issue 29) -------------------------------------------

CONLL_AS_TEXT = "found CoNLL token lines (columns ending in a tag) in raw text; tag CoNLL with --format conll"


@pytest.mark.parametrize("data, message", [
    (b"-DOCSTART- -X- -X- O\n\nVelmar NNP B-NP B-ORG\n", "in.txt:1: found a CoNLL -DOCSTART- line in raw text; tag CoNLL "
     "with --format conll"),
    (b"Anna flew .\n\nVelmar NNP B-NP B-ORG\nsigns VBZ B-VP O\n", f"in.txt:3: {CONLL_AS_TEXT}"),
    (b"Velmar\tB-ORG\nsigns\tO\n", f"in.txt:1: {CONLL_AS_TEXT}"),
])
def test_conll_read_as_text_is_refused(data, message):
    with pytest.raises(InputError) as caught:
        parse_text(data, "in.txt")
    assert str(caught.value) == message


def test_prose_that_ends_in_tag_like_words_is_text():
    data = (b"They flew a B-52\nWe drove the I-95 north\n\nCall me O\n\nA line\nthen two O\n\n"
            b"Ann flew .\nVelmar signs O\n")
    assert [line.text for line in parse_text(data, "in.txt")] == [
        "They flew a B-52", "We drove the I-95 north", "Call me O", "A line", "then two O", "Ann flew .",
        "Velmar signs O"]


def test_a_stream_waits_for_a_second_line_only_when_the_first_may_be_conll():
    """iter_text gives each line of prose as soon as it is read; a first line that ends in a tag
    waits for the next line (or the block's end) to tell."""
    def lines():
        yield b"Anna flew ."
        assert seen == [TextLine("Anna flew .", 1, 0)]
        yield b"Bob O"  # not the first line of its block
        assert seen[-1] == TextLine("Bob O", 2, 0)
        yield b""
        yield b"Eve flew B-52"
        assert seen[-1] == TextLine("Bob O", 2, 0)  # held
        yield b"and left ."
        assert seen[-1] == TextLine("and left .", 5, 1)
    seen = []
    for item in iter_text(lines(), "in.txt"):
        seen.append(item)
    assert [line.number for line in seen] == [1, 2, 4, 5]


def test_a_text_line_of_too_many_tokens_is_refused_after_tokenizing():
    (item,) = text_sentences(parse_text(b"a b c d e\n", "in.txt"), split_on_spaces)
    check_tokens(item, "in.txt", Limits(sentence_tokens=5))
    with pytest.raises(InputError) as caught:
        check_tokens(item, "in.txt", Limits(sentence_tokens=4))
    assert str(caught.value) == "in.txt:1: expected a sentence of at most 4 tokens (--max_sentence_tokens raises it)"
    with pytest.raises(InputError, match=r"^in.txt:2: expected a line of at most 8 bytes \(--max_line_bytes"):
        parse_text(b"a b c d\na b c d e\n", "in.txt", Limits(line_bytes=8))
