"""Transcripts: normalisation as LibriSpeech writes them, and the character vocabulary.

LibriSpeech transcripts are upper case with no punctuation but the apostrophe ("DON'T"), so every
corpus is brought to that form and every model speaks it.
"""

from __future__ import annotations

import re
import string
import unicodedata

BLANK = "<blank>"
WORD_BOUNDARY = "|"  # the delimiter torchaudio's ctc_decoder expects between words
DEFAULT_UNITS = [BLANK, WORD_BOUNDARY, *string.ascii_uppercase, "'"]

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_NOT_UNIT = re.compile(r"[^A-Z' ]+")


def normalize(text: str) -> str:
    """'Mr. Müller's "well-known" cafe!' -> "MR MULLER'S WELL KNOWN CAFE"."""
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = text.encode("ascii", "ignore").decode().upper()
    text = _NOT_UNIT.sub(" ", text)
    # An apostrophe is kept inside or at the end of a word (DON'T, JAMES'); one used as a quote
    # mark at the start of a word, or standing alone, is dropped.
    words = (w.lstrip("'") for w in text.split())
    return " ".join(w for w in words if w)


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

    def encode(self, text: str) -> list[int]:
        """Normalise `text` and map it to unit indices ('|' for each space)."""
        return [self.index[WORD_BOUNDARY if c == " " else c] for c in normalize(text)]

    def decode(self, ids) -> str:
        """Unit indices (no blanks expected, though they are skipped) -> normalised text."""
        chars = (self.units[i] for i in ids if i != self.blank)
        text = "".join(" " if c == WORD_BOUNDARY else c for c in chars)
        return " ".join(text.split())
