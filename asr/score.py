"""Word and character error rates, with substitutions, deletions and insertions, through jiwer."""

from __future__ import annotations

from typing import NamedTuple

import jiwer


class Score(NamedTuple):
    wer: float  # percent
    cer: float  # percent
    substitutions: int
    deletions: int
    insertions: int
    words: int  # reference words
    char_errors: int
    chars: int  # reference characters
    utterances: int

    def summary(self) -> str:
        return f"WER {self.wer:.2f}% CER {self.cer:.2f}% ({self.utterances} utterances)"


def score(refs: list[str], hyps: list[str]) -> Score:
    """Corpus-level WER/CER (errors summed over utterances, divided by reference length)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    s = d = i = words = char_errors = chars = 0
    for ref, hyp in zip(refs, hyps):
        ref, hyp = " ".join(ref.split()), " ".join(hyp.split())
        w = _counts(ref.split(), hyp.split())
        c = _counts(list(ref), list(hyp))
        s, d, i, words = s + w[0], d + w[1], i + w[2], words + w[3]
        char_errors, chars = char_errors + sum(c[:3]), chars + c[3]
    return Score(
        wer=100.0 * (s + d + i) / max(words, 1),
        cer=100.0 * char_errors / max(chars, 1),
        substitutions=s, deletions=d, insertions=i, words=words,
        char_errors=char_errors, chars=chars, utterances=len(refs),
    )


def _counts(ref: list[str], hyp: list[str]) -> tuple[int, int, int, int]:
    """(substitutions, deletions, insertions, reference length) of one pair of token lists."""
    if not ref:  # jiwer refuses an empty reference: every hypothesis token is an insertion
        return 0, 0, len(hyp), 0
    if not hyp:
        return 0, len(ref), 0, len(ref)
    out = jiwer.process_words(" ".join(_encode(ref)), " ".join(_encode(hyp)))
    return out.substitutions, out.deletions, out.insertions, len(ref)


def _encode(tokens: list[str]) -> list[str]:
    # Characters are scored as words by jiwer; a space character becomes a visible token.
    return ["<sp>" if t == " " else t for t in tokens]
