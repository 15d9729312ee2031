"""ner/data/tokenizer.py: the tokenizer graph (raw text -> tokens with character offsets), checked
against the rules and against a reference written independently over the `regex` module's
grapheme clusters (\\X); and ner/data/text.py's readers."""
import os
import re
import subprocess
import sys
import unicodedata

import pytest
import regex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ner.data.text import parse_text, text_sentences
from ner.data.tokenizer import fewest_tokens, tokenize_texts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

PROPERTIES = settings(database=None, derandomize=True, deadline=None, max_examples=300,
                      suppress_health_check=[HealthCheck.too_slow])


def tokenize(text):
    return tokenize_texts([text])[0]


# ---------------------------------------------------------------- the reference

_LITERALS = {**{c: c for c in "smdrevlnt_.-,:'"}, **{c.upper(): c for c in "smdrevlnt"}, "\u2019": "'"}
_REFERENCE_TOKEN = re.compile(r"""(?:[a-z]\.){2,}|'(?:s|m|d|re|ve|ll)\b|\w+(?:(?:-|'|(?<=\d)[.,:](?=\d))\w+)*
                              |\.{2,}|-{2,}|\S""", re.VERBOSE)
_REFERENCE_CLITIC = re.compile(r"(?:n't|'(?:s|m|d|re|ve|ll))$")


def reference_stand_in(cluster: str) -> str:
    """The tokenizer's docstring's rule for what kind of character a cluster counts as."""
    visible = regex.sub(r"[\p{Cf}\p{Cc}]", "", cluster)
    if not visible or regex.search(r"\s", visible):
        return " "
    if regex.search(r"\p{Me}", visible):
        return "#"
    first = visible[0]
    if len(visible) == 1 and first in _LITERALS:
        return _LITERALS[first]
    if first == "_" or regex.match(r"\p{Nd}", first):
        return "_" if first == "_" else "0"
    return "a" if regex.match(r"[\p{L}\p{N}]", first) else "#"


def reference_tokenize(text: str) -> list[tuple[str, int, int]]:
    """The rules with Python's re (lookarounds, Unicode-aware) over the `regex` module's clusters."""
    clusters = regex.findall(r"\X", text)
    starts = [0]
    for cluster in clusters:
        starts.append(starts[-1] + len(cluster))
    stand_ins = "".join(map(reference_stand_in, clusters))
    tokens = []
    for match in _REFERENCE_TOKEN.finditer(stand_ins):
        first, last = match.span()
        start, end = starts[first], starts[last]
        clitic = _REFERENCE_CLITIC.search(match.group())
        if clitic and clitic.start() > 0:
            split = starts[first + clitic.start()]
            tokens.append((text[start:split], start, split))
            start = split
        tokens.append((text[start:end], start, end))
    return tokens


def tokens_with_offsets(text):
    """Check every offset against the text and the tokens against the reference, then return them."""
    tokens = tokenize(text)
    assert tokens == reference_tokenize(text)
    for token, start, end in tokens:
        assert text[start:end] == token
    return tokens


# ---------------------------------------------------------------- the rules for ordinary text


@pytest.mark.parametrize(
    "text, expected",
    [
        ("", []),
        ("  \t\n ", []),
        ("Peter  ran\thome.", [("Peter", 0, 5), ("ran", 7, 10), ("home", 11, 15), (".", 15, 16)]),
        ("I don't know.", [("I", 0, 1), ("do", 2, 4), ("n't", 4, 7), ("know", 8, 12), (".", 12, 13)]),
        ("can't", [("ca", 0, 2), ("n't", 2, 5)]),
        ("DON'T", [("DO", 0, 2), ("N'T", 2, 5)]),
        ("We\u2019ll go", [("We", 0, 2), ("\u2019ll", 2, 5), ("go", 6, 8)]),
        ("John's car", [("John", 0, 4), ("'s", 4, 6), ("car", 7, 10)]),
        ("Jones 's", [("Jones", 0, 5), ("'s", 6, 8)]),
        ("O'Neill's", [("O'Neill", 0, 7), ("'s", 7, 9)]),
        ("the dogs' bowl", [("the", 0, 3), ("dogs", 4, 8), ("'", 8, 9), ("bowl", 10, 14)]),
        ("'quoted'", [("'", 0, 1), ("quoted", 1, 7), ("'", 7, 8)]),
        ("the U.S. and e.g. this",
         [("the", 0, 3), ("U.S.", 4, 8), ("and", 9, 12), ("e.g.", 13, 17), ("this", 18, 22)]),
        ("Mr. Smith", [("Mr", 0, 2), (".", 2, 3), ("Smith", 4, 9)]),
        ("3.5 1,000 12:30", [("3.5", 0, 3), ("1,000", 4, 9), ("12:30", 10, 15)]),
        ("1, 2.", [("1", 0, 1), (",", 1, 2), ("2", 3, 4), (".", 4, 5)]),
        ("well-known COVID-19", [("well-known", 0, 10), ("COVID-19", 11, 19)]),
        ("-x- a--b", [("-", 0, 1), ("x", 1, 2), ("-", 2, 3), ("a", 4, 5), ("--", 5, 7), ("b", 7, 8)]),
        ("Wait...", [("Wait", 0, 4), ("...", 4, 7)]),
        ("(a)[b]{c}", [("(", 0, 1), ("a", 1, 2), (")", 2, 3), ("[", 3, 4), ("b", 4, 5), ("]", 5, 6),
                       ("{", 6, 7), ("c", 7, 8), ("}", 8, 9)]),
        ('"Hi!?" ;:',
         [('"', 0, 1), ("Hi", 1, 3), ("!", 3, 4), ("?", 4, 5), ('"', 5, 6), (";", 7, 8), (":", 8, 9)]),
        ("$5 50%", [("$", 0, 1), ("5", 1, 2), ("50", 3, 5), ("%", 5, 6)]),
        ("K\u00f6ln \u201cZ\u00fcrich\u201d",
         [("K\u00f6ln", 0, 4), ("\u201c", 5, 6), ("Z\u00fcrich", 6, 12), ("\u201d", 12, 13)]),
    ],
)
def test_tokenize(text, expected):
    assert tokens_with_offsets(text) == expected


# ---------------------------------------------------------------- grapheme clusters

@pytest.mark.parametrize("form", ["NFC", "NFD"])
@pytest.mark.parametrize("word", ["Z\u00fcrich", "Fran\u00e7ois", "S\u00e3o", "\u00c5ngstr\u00f6m"])
def test_a_letter_with_combining_marks_stays_one_word(form, word):
    text = unicodedata.normalize(form, f"in {word}.")
    end = 3 + len(unicodedata.normalize(form, word))
    assert tokens_with_offsets(text) == [("in", 0, 2), (text[3:end], 3, end), (".", end, end + 1)]


def test_nfd_text_tokenizes_as_nfc_does():
    # An NFD n-tilde is no "n" of a clitic "n't", as the NFC letter is not.
    text = "Do\u00f1't Fran\u00e7ois' U.\u00c9. caf\u00e9-cr\u00e8me 'S\u00e9"
    nfc = [token for token, _, _ in tokens_with_offsets(text)]
    nfd = [unicodedata.normalize("NFC", token) for token, _, _ in tokens_with_offsets(unicodedata.normalize("NFD", text))]
    assert nfd == nfc == ["Do\u00f1't", "Fran\u00e7ois", "'", "U.\u00c9.", "caf\u00e9-cr\u00e8me", "'", "S\u00e9"]


@pytest.mark.parametrize(
    "text, expected",
    [
        # vowel signs and viramas are combining marks; a conjunct (ndra) is one cluster
        ("\u0928\u0930\u0947\u0928\u094d\u0926\u094d\u0930 \u092e\u094b\u0926\u0940",
         [("\u0928\u0930\u0947\u0928\u094d\u0926\u094d\u0930", 0, 8), ("\u092e\u094b\u0926\u0940", 9, 13)]),
        ("\u0939\u093f\u0928\u094d\u0926\u0940, \u0915\u094d\u0937",
         [("\u0939\u093f\u0928\u094d\u0926\u0940", 0, 6), (",", 6, 7), ("\u0915\u094d\u0937", 8, 11)]),
        # a ZWNJ inside a Persian word, a ZWJ after a virama (a half form): both stay in the word
        ("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645 x", [("\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", 0, 8),
                                                                 ("x", 9, 10)]),
        ("\u0915\u094d\u200d\u0937", [("\u0915\u094d\u200d\u0937", 0, 4)]),
        # Thai and Tamil vowel signs and tone marks
        ("\u0e19\u0e49\u0e33\u0e43\u0e08", [("\u0e19\u0e49\u0e33\u0e43\u0e08", 0, 5)]),
        ("\u0ba4\u0bae\u0bbf\u0bb4\u0bcd.", [("\u0ba4\u0bae\u0bbf\u0bb4\u0bcd", 0, 5), (".", 5, 6)]),
    ],
)
def test_no_token_boundary_inside_a_cluster(text, expected):
    assert tokens_with_offsets(text) == expected


def test_hangul_jamo_stay_one_word():
    # Conjoining jamo (L V T) make one syllable each; jamo are letters, so this already held.
    text = "\u1100\u1161\u11a8\u1100\u1169 \ud55c"
    assert tokens_with_offsets(text) == [("\u1100\u1161\u11a8\u1100\u1169", 0, 5), ("\ud55c", 6, 7)]


FRANCE, GERMANY = "\U0001f1eb\U0001f1f7", "\U0001f1e9\U0001f1ea"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
THUMBS_UP = "\U0001f44d\U0001f3fd"   # with a skin tone
ENGLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f"   # tag sequence
HEART = "\u2764\ufe0f"   # with the emoji presentation selector
KEYCAP = "1\ufe0f\u20e3"   # a digit in an enclosing mark: a symbol, not a number


@pytest.mark.parametrize("emoji", [FRANCE, FAMILY, THUMBS_UP, ENGLAND, HEART, KEYCAP])
def test_an_emoji_cluster_is_one_token(emoji):
    assert tokens_with_offsets(emoji) == [(emoji, 0, len(emoji))]
    text = f"Paris{emoji}!"
    assert tokens_with_offsets(text) == [("Paris", 0, 5), (emoji, 5, 5 + len(emoji)), ("!", 5 + len(emoji), 6 + len(emoji))]


def test_each_emoji_cluster_is_a_token_of_its_own():
    text = FRANCE + GERMANY + FAMILY + FAMILY
    assert tokens_with_offsets(text) == [(FRANCE, 0, 2), (GERMANY, 2, 4), (FAMILY, 4, 9), (FAMILY, 9, 14)]


# ---------------------------------------------------------------- invisible characters


@pytest.mark.parametrize(
    "text, expected",
    [
        ("\ufeffHello\u200bworld\x00!", [("Hello", 1, 6), ("world", 7, 12), ("!", 13, 14)]),
        ("\ufeff", []),
        ("\u200b\u2060\u200c\u200d\x00\x07", []),
        ("a\u2060b", [("a", 0, 1), ("b", 2, 3)]),          # word joiner
        ("x \u200c y", [("x", 0, 1), ("y", 4, 5)]),        # a ZWNJ standing alone
        ("\u200eabc\u200f", [("abc", 1, 4)]),              # bidi marks
        ("\u202bHi\u202c.", [("Hi", 1, 3), (".", 4, 5)]),  # bidi embedding
        ("a \u0308b", [("a", 0, 1), ("b", 3, 4)]),          # a mark on a space goes with the space
    ],
)
def test_invisible_characters_separate_tokens_and_are_never_tokens(text, expected):
    assert tokens_with_offsets(text) == expected


def test_the_text_reader_leaves_blank_lines_and_invisible_characters_out():
    lines = parse_text("\ufeffHello\u200bworld\n \t\n\u200b\x00\nZu\u0308rich\n".encode(), "in.txt")
    assert [line.number for line in lines] == [1, 3, 4]  # line 2 is blank
    items = [item for item in text_sentences(lines, tokenize_texts) if len(item.sentence)]
    assert [item.sentence.words for item in items] == [("Hello", "world"), ("Zu\u0308rich",)]
    assert [item.offsets for item in items] == [((1, 6), (7, 12)), ((0, 7),)]
    assert [item.sentence.first_line for item in items] == [1, 4]


# ---------------------------------------------------------------- properties

# Characters that make or break clusters, most of them: marks, joiners, invisible format and control
# characters, regional indicators, emoji and skin tones, Hangul jamo, prepended marks and letters.
TRICKY = ("aZ1_.,:'\u2019- \t\r\n\u00a0\u0308\u0327\u0301\u093f\u094d\u0928\u0937\u200d\u200c\u200b\ufeff\u2060\x00"
          "\u00ad\u200e\u202e\U0001f1eb\U0001f1f7\U0001f468\U0001f3fd\ufe0f\u20e3\u1100\u1161\u11a8\uac00\u0600\u0d4e"
          "\U000e0067\U000e007f\u0e33\u0e49")
texts = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)) | st.sampled_from(TRICKY), max_size=40)


def invisible(cluster):
    """Only format and control characters (categories as the tokenizer's `regex` module has them)."""
    return regex.fullmatch(r"[\p{Cf}\p{Cc}]+", cluster) is not None


@PROPERTIES
@given(texts)
@example("\u00a0\u20e3x")   # an enclosing mark on a space: the space wins, it is no symbol
def test_tokens_are_whole_clusters_and_never_invisible(text):
    clusters = [match.span() for match in regex.finditer(r"\X", text)]
    boundaries = {0, len(text)} | {start for start, _ in clusters}
    covered = set()
    previous_end = 0
    tokens = tokenize(text)
    assert tokens == reference_tokenize(text)
    for token, start, end in tokens:
        assert text[start:end] == token and previous_end <= start < end
        previous_end = end
        assert start in boundaries and end in boundaries
        assert not any(c.isspace() for c in token)
        inside = [text[a:b] for a, b in clusters if start <= a < end]
        assert not any(invisible(cluster) for cluster in inside)
        covered.update(range(start, end))
    # Nothing visible is left out: a cluster outside every token is whitespace or invisible.
    for a, b in clusters:
        if a not in covered:
            cluster = text[a:b]
            assert invisible(cluster) or any(c.isspace() for c in cluster)


@PROPERTIES
@given(st.text(st.sampled_from("abn AEIOU.,-'\u2019\u00e9\u00f1\u00e7\u00fc\u00c5\u1e17\u01d6"), max_size=30))
def test_nfd_and_nfc_give_the_same_tokens(text):
    nfc = [token for token, _, _ in tokenize(unicodedata.normalize("NFC", text))]
    nfd = [unicodedata.normalize("NFC", token) for token, _, _ in tokenize(unicodedata.normalize("NFD", text))]
    assert nfd == nfc


def test_a_batch_tokenizes_each_text_as_alone():
    texts = ["I don't know.", "", "Zu\u0308rich \U0001f1eb\U0001f1f7", " \u200b ", "U.S. 3.5"]
    assert tokenize_texts(texts) == [tokenize(text) for text in texts]


def test_memory_grows_with_the_text_not_with_text_times_tokens():
    """A 64 KiB line of 32,768 one-letter tokens, the longest line a reader takes: building each
    token from a copy of its whole text held 2 GB here; joining its clusters holds a few MB."""
    script = ("import resource\n"
              "from ner.data.tokenizer import tokenize_texts\n"
              "tokenize_texts(['warm up'])\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "assert len(tokenize_texts(['a ' * 32768])[0]) == 32768\n"
              "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) < 300, f"peak RSS grew by {done.stdout.split()[-1]} MB"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("ab1.,-'$ \t\u00a0\u200b\u0301\u0000\u001c\u2028\u3000\u0915\u094d"
                                              "\U0001F600\u200d\U0001F1EB\U0001F1F7")), max_size=40))
@example("a \u0301 \u200b b")
@example("\u0301\u0301 \u001c a\u001cb")
def test_fewest_tokens_never_exceeds_the_tokens(text):
    assert fewest_tokens(text) <= len(tokenize_texts([text])[0])


def test_fewest_tokens_counts_each_run_with_a_visible_character():
    assert fewest_tokens("Paris " * 700) == 700
    assert fewest_tokens("a \u0301 \u200b\u200b b\u00a0c") == 3
