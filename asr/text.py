"""Transcripts: normalisation as LibriSpeech writes them, and the character vocabulary.

LibriSpeech transcripts are upper case with no punctuation but the apostrophe ("DON'T"), and
numbers spoken as words, so every corpus is brought to that form and every model speaks it.
"""

from __future__ import annotations

import re
import string
import unicodedata
from decimal import Decimal
from typing import NamedTuple

from num2words import num2words

BLANK = "<blank>"
WORD_BOUNDARY = "|"  # the delimiter torchaudio's ctc_decoder expects between words
DEFAULT_UNITS = [BLANK, WORD_BOUNDARY, *string.ascii_uppercase, "'"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
# Letters that Unicode does not decompose into a base letter plus accents: spelled as English does.
_LETTERS = str.maketrans({"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
                          "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "þ": "th", "Þ": "TH", "ð": "d", "Ð": "D"})
_FRACTIONS = {"½": "half", "⅓": "third", "⅔": "two thirds", "¼": "quarter", "¾": "three quarters", "⅛": "eighth"}
_FRACTION = re.compile(rf"(\d)?\s*([{''.join(_FRACTIONS)}])")
_POWER = re.compile(r"(?<=[A-Za-z0-9])([²³])")  # km², 10³; other superscripts (footnote marks) are dropped
_SUPERSCRIPT = re.compile(r"[\u00b2\u00b3\u00b9\u2070\u2074-\u2079]")  # (subscripts: H₂O is H TWO O)
_NOT_UNIT = re.compile(r"[^A-Z' ]+")


# Marks that are punctuation in running text: dropping them loses no word. Anything else that
# normalisation drops (a '#', a '*', a letter of another script) is worth telling a user about.
_PUNCTUATION = set(".,;:!?'\"-()[]/")  # in ASCII; elsewhere, Unicode's punctuation categories
_NUMBER = re.compile(r"(\$)?(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(st|nd|rd|th|s(?![a-z]))?(%)?", re.IGNORECASE)


class Normalised(NamedTuple):
    text: str
    numbers: list[str]  # "1820 -> EIGHTEEN TWENTY", one for each number spoken as words
    dropped: str  # characters dropped that are not punctuation, each once, in order of appearance


def _spoken(match: re.Match) -> str:
    dollar, digits, ordinal, percent = match.groups()
    grouped, digits = "," in digits, digits.replace(",", "")  # "1,250" is a count, never a year
    if dollar and "." in digits:  # "$3.50": THREE DOLLARS AND FIFTY CENTS
        whole, cents = digits.split(".", 1)
        cents = int(cents[:2].ljust(2, "0"))
        dollars = f" {num2words(int(whole))} dollar{'' if int(whole) == 1 else 's'}"
        return dollars + (f" and {num2words(cents)} cent{'' if cents == 1 else 's'} " if cents else " ")
    if "." in digits:
        words = num2words(Decimal(digits))
    elif len(digits) > 15 or (digits.startswith("0") and len(digits) > 1):
        words = " ".join(num2words(int(d)) for d in digits)  # a code or an id: digit by digit
    elif ordinal and ordinal.lower() != "s":
        words = num2words(int(digits), to="ordinal")
    elif not (dollar or percent or grouped) and 1100 <= int(digits) <= 2099 and len(digits) == 4:
        words = num2words(int(digits), to="year")  # "1820" is read EIGHTEEN TWENTY
    else:
        words = num2words(int(digits))
    if ordinal and ordinal.lower() == "s":  # "1990s", "'60s", "10s": the decade, or the number, plural
        words = re.sub(r"y$", "ie", words) + ("es" if words.endswith("x") else "s")
    if dollar:
        words += " dollar" if digits == "1" else " dollars"
    return f" {words}{' percent' if percent else ''} "


def _fraction(match: re.Match) -> str:
    """'3½' -> '3 and a half', '½' -> 'one half', '¾' -> 'three quarters'."""
    whole, name = match.group(1), _FRACTIONS[match.group(2)]
    one = name in ("half", "third", "quarter", "eighth")
    if whole:
        return f"{whole} and {'a ' if one else ''}{name} "
    return f" {'one ' if one else ''}{name} "


def normalize_verbose(text: str) -> Normalised:
    """normalize(), saying which numbers it spoke as words and which non-punctuation it dropped."""
    text = _FRACTION.sub(_fraction, text.translate(_APOSTROPHES).translate(_LETTERS))
    text = _POWER.sub(lambda m: " squared" if m.group(1) == "²" else " cubed", text)
    dropped = dict.fromkeys(_SUPERSCRIPT.findall(text))
    text = unicodedata.normalize("NFKD", _SUPERSCRIPT.sub("", text))
    dropped.update(dict.fromkeys(c for c in text if not (c.isascii() or unicodedata.combining(c)
                                                         or unicodedata.category(c).startswith("P"))))
    text = text.encode("ascii", "ignore").decode()
    numbers = []

    def speak(match: re.Match) -> str:
        words = _spoken(match)
        numbers.append(f"{match.group(0)} -> {_units(words)}")
        return words

    text = _NUMBER.sub(speak, text.replace("&", " and "))
    dropped.update(dict.fromkeys(c for c in text if not (c.isalnum() or c.isspace() or c in _PUNCTUATION)))
    return Normalised(_units(text), numbers, "".join(dropped))


def _units(text: str) -> str:
    text = _NOT_UNIT.sub(" ", text.upper())
    # An apostrophe is kept inside or at the end of a word (DON'T, JAMES'); one used as a quote
    # mark is dropped: at the start of a word, standing alone, or closing a quote opened earlier.
    words, quoted = [], False
    for w in text.split():
        if w.startswith("'"):
            w, quoted = w.lstrip("'"), True
        if quoted and w.endswith("'"):
            w, quoted = w.rstrip("'"), False
        if w:
            words.append(w)
    return " ".join(words)


def normalize(text: str) -> str:
    """'Mr. Müller's "well-known" cafe, 1820!' -> "MR MULLER'S WELL KNOWN CAFE EIGHTEEN TWENTY"."""
    return normalize_verbose(text).text


class Vocabulary:
    """Character units with the CTC blank at index 0 and '|' between words."""

    def __init__(self, units: list[str] | None = None):
        self.units = list(units or DEFAULT_UNITS)
        if self.units[0] != BLANK or WORD_BOUNDARY not in self.units:
            raise ValueError(f"vocabulary must start with {BLANK!r} and contain {WORD_BOUNDARY!r}")
        if len(set(self.units)) != len(self.units):
            raise ValueError("vocabulary has duplicate units")
        self.index = {u: i for i, u in enumerate(self.units)}
        self.blank = 0

    def __len__(self) -> int:
        return len(self.units)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.units == other.units

    def foreign(self, spelling) -> list[str]:
        """The units of a word's spelling (a string or a list) that cannot spell a word with this
        vocabulary: units it lacks, and the blank and '|', which are not letters."""
        return [u for u in spelling if u not in self.index or u in (BLANK, WORD_BOUNDARY)]

    def encode(self, text: str) -> list[int]:
        """Normalise `text` and map it to unit indices ('|' for each space)."""
        return [self.index[WORD_BOUNDARY if c == " " else c] for c in normalize(text)]

    def decode(self, ids) -> str:
        """Unit indices (no blanks expected, though they are skipped) -> normalised text."""
        chars = (self.units[i] for i in ids if i != self.blank)
        text = "".join(" " if c == WORD_BOUNDARY else c for c in chars)
        return " ".join(text.split())
