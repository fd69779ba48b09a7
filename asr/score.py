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
        if not self.utterances:  # nothing scored: no figure, rather than a perfect 0%
            return "WER n/a CER n/a (0 utterances)"
        return f"WER {self.wer:.2f}% CER {self.cer:.2f}% ({self.utterances} utterances)"


def score(refs: list[str], hyps: list[str]) -> Score:
    """Corpus-level WER/CER (errors summed over utterances, divided by reference length)."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    return total([_pair(ref, hyp) for ref, hyp in zip(refs, hyps)])


def total(scores: list[Score]) -> Score:
    """One corpus-level score from per-utterance (or per-part) scores: their counts summed."""
    s, d, i, words, char_errors, chars, utterances = (
        sum(getattr(x, f) for x in scores)
        for f in ("substitutions", "deletions", "insertions", "words", "char_errors", "chars", "utterances"))
    return Score(
        wer=100.0 * (s + d + i) / max(words, 1),
        cer=100.0 * char_errors / max(chars, 1),
        substitutions=s, deletions=d, insertions=i, words=words,
        char_errors=char_errors, chars=chars, utterances=utterances,
    )


def _pair(ref: str, hyp: str) -> Score:
    ref, hyp = " ".join(ref.split()), " ".join(hyp.split())
    s, d, i, words = _counts(ref.split(), hyp.split())
    *char_counts, chars = _counts(list(ref), list(hyp))
    return Score(100.0 * (s + d + i) / max(words, 1), 100.0 * sum(char_counts) / max(chars, 1),
                 s, d, i, words, sum(char_counts), chars, 1)


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


def alignment(ref: str, hyp: str) -> str:
    """Reference over hypothesis, word by word, as three lines (REF, HYP, and S/D/I under each
    error), from jiwer's alignment; `*` fills the side that has no word."""
    ref_words, hyp_words = ref.split(), hyp.split()
    if not ref_words or not hyp_words:  # jiwer refuses an empty side: all deletions or insertions
        chunks = [("delete", w, "") for w in ref_words] + [("insert", "", w) for w in hyp_words]
    else:
        chunks = []
        for c in jiwer.process_words(ref, hyp).alignments[0]:
            r, h = ref_words[c.ref_start_idx:c.ref_end_idx], hyp_words[c.hyp_start_idx:c.hyp_end_idx]
            if c.type in ("equal", "substitute"):
                chunks += [(c.type, a, b) for a, b in zip(r, h)]
            else:
                chunks += [(c.type, a, "") for a in r] if c.type == "delete" else [(c.type, "", b) for b in h]
    lines = ["REF:", "HYP:", "    "]
    mark = {"equal": " ", "substitute": "S", "delete": "D", "insert": "I"}
    for kind, a, b in chunks:
        width = max(len(a), len(b))
        lines[0] += " " + (a or "*" * width).ljust(width)
        lines[1] += " " + (b or "*" * width).ljust(width)
        lines[2] += " " + mark[kind].ljust(width)
    return "\n".join(line.rstrip() for line in lines)
