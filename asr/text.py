"""Transcripts: normalisation as LibriSpeech writes them, and the model's units: letters, or
the phones of a pronunciation lexicon.

LibriSpeech transcripts are upper case with no punctuation but the apostrophe ("DON'T"), and
numbers spoken as words, so every corpus is brought to that form and every model speaks it.
A lexicon ('WORD PH PH ...' a line, a word's likeliest pronunciation first, CMUdict's form)
makes the units phones: a model then hears sounds, not English spelling, and a word comes
out only through the lexicon (recipes/default/ablation.md: phones against letters).
"""

from __future__ import annotations

import math
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


Pronunciations = dict[str, list[list[str]]]  # WORD -> its pronunciations, the likeliest first


def read_lexicon(text: str, source: str) -> Pronunciations:
    """A pronunciation lexicon's lines ('WORD PH PH ...'; CMUdict's 'word(2) ...' for a second
    one, and flashlight's closing '|', are read too). ValueError naming `source` and the line."""
    prons: Pronunciations = {}
    for n, line in enumerate(text.splitlines(), 1):
        word, *phones = line.split() or [""]
        if not word or word.startswith(";;;"):  # blank, or CMUdict's comments
            continue
        phones = [p for p in phones if p != WORD_BOUNDARY]
        if not phones:
            raise ValueError(f"{source}: line {n}: {word[:40]!r} has no pronunciation")
        if BLANK in phones:
            raise ValueError(f"{source}: line {n}: {BLANK} is not a phone")
        known = prons.setdefault(re.sub(r"\(\d+\)$", "", word).upper(), [])
        if phones not in known:  # a line repeated (or 'word' beside 'WORD') is one pronunciation
            known.append(phones)
    if not prons:
        raise ValueError(f"{source}: no pronunciations")
    return prons


class Vocabulary:
    """The model's units, with the CTC blank at index 0 and '|' between words: letters, or with
    `pronunciations` (`read_lexicon`), the phones they use, and words are spelt through them."""

    def __init__(self, units: list[str] | None = None, pronunciations: Pronunciations | None = None):
        phones = {p for ps in (pronunciations or {}).values() for pron in ps for p in pron}
        if units is None and phones:
            units = [BLANK, WORD_BOUNDARY, *sorted(phones)]
        self.units = list(units or DEFAULT_UNITS)
        if self.units[0] != BLANK or WORD_BOUNDARY not in self.units:
            raise ValueError(f"vocabulary must start with {BLANK!r} and contain {WORD_BOUNDARY!r}")
        if len(set(self.units)) != len(self.units):
            raise ValueError("vocabulary has duplicate units")
        self.index = {u: i for i, u in enumerate(self.units)}
        self.blank = 0
        self.pronunciations = pronunciations or None
        if self.pronunciations:
            unknown = sorted(phones - set(self.units[1:]) - {WORD_BOUNDARY})
            if unknown:
                raise ValueError(f"the lexicon's phones {', '.join(unknown[:5])} are not units of the vocabulary")

    def __len__(self) -> int:
        return len(self.units)

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocabulary) and self.units == other.units

    def foreign(self, spelling) -> list[str]:
        """The units of a word's spelling (a string or a list) that cannot spell a word with this
        vocabulary: units it lacks, and the blank and '|', which are not letters."""
        return [u for u in spelling if u not in self.index or u in (BLANK, WORD_BOUNDARY)]

    def lexicon_text(self, ranks: dict[str, float] | None = None) -> str:
        """The pronunciations as lexicon lines (`read_lexicon` reads them back); '' for letters.
        With `ranks` (an LM's log-probabilities), its likeliest words first, the rest after."""
        words = list(self.pronunciations or {})
        if ranks:
            words.sort(key=lambda w: -ranks.get(w, -math.inf))
        return "".join(f"{w} {' '.join(p)}\n" for w in words for p in self.pronunciations[w])

    def unspellable(self, text: str) -> list[str]:
        """The words of `text` (normalised) that the lexicon lacks; none for letters."""
        if not self.pronunciations:
            return []
        return [w for w in normalize(text).split() if w not in self.pronunciations]

    def spell(self, words: list[str]) -> list[str]:
        """Each word's likeliest pronunciation, '|' between words. A one-letter word beside
        another is a letter spelt out (AN4's "P I T T"): it takes the letter's name, CMUdict's
        'A.' (EY), not the article's AH. KeyError for a word the lexicon lacks."""
        units = []
        for k, w in enumerate(words):
            spelt_out = len(w) == 1 and any(len(n) == 1 for n in words[max(k - 1, 0):k] + words[k + 1:k + 2])
            key = w + "." if spelt_out and w + "." in self.pronunciations else w
            units += ([WORD_BOUNDARY] if units else []) + self.pronunciations[key][0]
        return units

    def encode(self, text: str) -> list[int]:
        """Normalise `text` and map it to unit indices ('|' for each space); with a lexicon, each
        word's phones (ValueError for a word it lacks: `unspellable` finds them first)."""
        if not self.pronunciations:
            return [self.index[WORD_BOUNDARY if c == " " else c] for c in normalize(text)]
        words = normalize(text).split()
        try:
            return [self.index[u] for u in self.spell(words)]
        except KeyError as e:
            raise ValueError(f"no pronunciation of {e.args[0]!r} in the lexicon") from None

    def decode(self, ids) -> str:
        """Unit indices (no blanks expected, though they are skipped) -> normalised text; with a
        lexicon, phones ('HH AH L OW | W ER L D'): words come out of a lexicon search only."""
        units = [self.units[i] for i in ids if i != self.blank]
        if self.pronunciations:
            return " ".join(" ".join(units).strip(" " + WORD_BOUNDARY).split())
        text = "".join(" " if c == WORD_BOUNDARY else c for c in units)
        return " ".join(text.split())
