import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.text import DEFAULT_UNITS, Vocabulary, normalize, normalize_verbose, read_lexicon


@pytest.mark.parametrize("raw,expected", [
    ('Mr. Müller\'s "well-known" café!', "MR MULLER'S WELL KNOWN CAFE"),
    ("don\u2019t  stop", "DON'T STOP"),
    ("'Tis the season; 'quoted'", "TIS THE SEASON QUOTED"),
    ("the Jameses' house", "THE JAMESES' HOUSE"),
    ("he said 'yes' to the boys' toys", "HE SAID YES TO THE BOYS' TOYS"),  # a quote closes; a possessive stays
    ("'come this way, Mr. Smith.'", "COME THIS WAY MR SMITH"),
    ("Straße, Cæsar, Søren, Łódź", "STRASSE CAESAR SOREN LODZ"),  # letters without a decomposition
    ("3½ miles, ¾ of it, ½", "THREE AND A HALF MILES THREE QUARTERS OF IT ONE HALF"),
    ("20 km² of H₂O", "TWENTY KM SQUARED OF H TWO O"),
    ("the 1990s and the '60s, in 10s", "THE NINETEEN NINETIES AND THE SIXTIES IN TENS"),
    ("   ", ""),
    ("Chapter XIV -- 1820", "CHAPTER XIV EIGHTEEN TWENTY"),
    ("HE HOPED THERE WOULD BE STEW", "HE HOPED THERE WOULD BE STEW"),
    # numbers are spoken as words, as LibriSpeech's transcribers wrote them
    ("Room 12, 3rd floor", "ROOM TWELVE THIRD FLOOR"),
    ("1,250 people in 2005", "ONE THOUSAND TWO HUNDRED AND FIFTY PEOPLE IN TWO THOUSAND AND FIVE"),
    ("It cost $3.50, 15% off", "IT COST THREE DOLLARS AND FIFTY CENTS FIFTEEN PERCENT OFF"),
    ("pi is 3.14", "PI IS THREE POINT ONE FOUR"),
    ("dial 0800", "DIAL ZERO EIGHT ZERO ZERO"),
    ("salt & pepper", "SALT AND PEPPER"),
])
def test_normalize_writes_like_librispeech(raw, expected):
    assert normalize(raw) == expected


def test_normalize_verbose_reports_numbers_and_dropped_symbols():
    result = normalize_verbose("Press #1 or *, 日本 \u201cquoted\u201d \u2014 in 1820.")
    assert result.text == "PRESS ONE OR QUOTED IN EIGHTEEN TWENTY"
    assert result.numbers == ["1 -> ONE", "1820 -> EIGHTEEN TWENTY"]
    assert result.dropped == "日本#*"  # punctuation (the curly quotes, the dash) is not reported
    assert normalize_verbose("a footnote\u00b9 here").dropped == "\u00b9"  # a mark, not a number: said so
    clean = normalize_verbose("Plain words, punctuated: fine!")
    assert clean.numbers == [] and clean.dropped == ""


def test_units_are_blank_boundary_letters_apostrophe():
    vocab = Vocabulary()
    assert len(vocab) == 29 and vocab.units == DEFAULT_UNITS
    assert vocab.units[0] == "<blank>" and vocab.blank == 0


def test_encode_decode_round_trip():
    vocab = Vocabulary()
    for text in ["HELLO WORLD", "DON'T", "A B C", "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG'S BACK"]:
        ids = vocab.encode(text)
        assert 0 not in ids
        assert vocab.decode(ids) == text
    assert vocab.decode(vocab.encode("  Messy, text!  ")) == "MESSY TEXT"
    assert vocab.encode("AB") == [vocab.index["A"], vocab.index["B"]]
    assert vocab.encode("A B")[1] == vocab.index["|"]


def test_vocabulary_must_start_with_blank():
    with pytest.raises(ValueError):
        Vocabulary(["A", "<blank>", "|"])


# -- properties, on any text hypothesis makes up ----------------------------------------------------



@settings(max_examples=500, deadline=None)
@given(st.text())
def test_normalised_text_is_in_the_vocabulary_and_round_trips(raw):
    vocab = Vocabulary()
    text = normalize(raw)
    assert normalize(text) == text  # idempotent
    assert text == " ".join(text.split())  # single spaces, none at the ends
    assert set(text) <= set(string.ascii_uppercase + "' ")
    assert all(not w.startswith("'") for w in text.split())
    assert vocab.decode(vocab.encode(raw)) == text
    assert vocab.blank not in vocab.encode(raw)


# -- phones: a pronunciation lexicon's units ---------------------------------------------------------

LEXICON = """A AH
A(2) EY
A. EY
B. B IY
CAT K AE T |
;;; a comment, as CMUdict has them
hello HH AH L OW
HELLO(2) HH EH L OW
"""


def test_a_lexicon_is_read_in_cmudicts_form_likeliest_pronunciation_first():
    prons = read_lexicon(LEXICON, "lex.txt")
    assert prons["A"] == [["AH"], ["EY"]] and prons["CAT"] == [["K", "AE", "T"]]  # flashlight's '|' dropped
    assert prons["HELLO"] == [["HH", "AH", "L", "OW"], ["HH", "EH", "L", "OW"]]
    assert read_lexicon(LEXICON + "CAT K AE T\nhello(3) HH AH L OW\n", "lex.txt") == prons  # the same, given twice
    with pytest.raises(ValueError, match=r"lex.txt: line 2: 'CAT' has no pronunciation"):
        read_lexicon("A AH\nCAT |\n", "lex.txt")
    with pytest.raises(ValueError, match="lex.txt: no pronunciations"):
        read_lexicon("\n;;; nothing\n", "lex.txt")


def test_a_phone_vocabulary_spells_words_through_the_lexicon():
    vocab = Vocabulary(pronunciations=read_lexicon(LEXICON, "lex.txt"))
    assert vocab.units == ["<blank>", "|", "AE", "AH", "B", "EH", "EY", "HH", "IY", "K", "L", "OW", "T"]
    ids = vocab.encode("Hello, a cat!")
    assert vocab.decode(ids) == "HH AH L OW | AH | K AE T"  # the article: AH
    assert vocab.decode(vocab.encode("a b")) == "EY | B IY"  # letters spelt out: their names
    assert vocab.unspellable("the cat sat") == ["THE", "SAT"] and Vocabulary().unspellable("the cat") == []
    with pytest.raises(ValueError, match="no pronunciation of 'THE' in the lexicon"):
        vocab.encode("the cat")
    assert read_lexicon(vocab.lexicon_text(), "again") == vocab.pronunciations
    with pytest.raises(ValueError, match="the lexicon's phones AE, K, T are not units"):
        Vocabulary(["<blank>", "|", "AH"], read_lexicon("A AH\nCAT K AE T\n", "lex.txt"))
