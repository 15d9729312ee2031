"""Document context: the words around each sentence in its document, never across documents."""
from ner.data.conll import parse_conll
from ner.data.documents import document_contexts

CONLL = b"""-DOCSTART- O

a O
b O

c O

-DOCSTART- O

d O
e O
f O

g O
"""


def test_contexts_stay_inside_documents_and_keep_the_nearest_words():
    sentences = parse_conll(CONLL, "x.txt")
    assert [s.document for s in sentences] == [1, 1, 1, 2, 2, 2]
    assert document_contexts(sentences, 5) == [((), ()), ((), ("c",)), (("a", "b"), ()),
                                               ((), ()), ((), ("g",)), (("d", "e", "f"), ())]
    assert document_contexts(sentences, 2)[5] == (("e", "f"), ())
    assert document_contexts(sentences, 0) == [((), ())] * 6


def test_a_sentence_alone_is_its_own_document():
    sentences = [s for s in parse_conll(CONLL, "x.txt") if not s.docstart]
    assert document_contexts(sentences[:1], 8) == [((), ())]
    assert document_contexts(sentences[2:], 8)[0] == ((), ("g",))
