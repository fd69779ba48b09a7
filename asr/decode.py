"""From CTC log-probabilities to text."""

from __future__ import annotations

from typing import NamedTuple

import torch

from asr.text import Vocabulary


class Hypothesis(NamedTuple):
    text: str
    tokens: list[int]  # unit ids after collapsing repeats and removing blanks
    score: float  # sum of the chosen frames' log-probabilities


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary) -> list[Hypothesis]:
    """Best unit per frame, repeats collapsed, blanks removed. log_probs: (B, T, V)."""
    best, ids = log_probs.max(dim=-1)
    hyps = []
    for b, n in enumerate(lengths.tolist()):
        frames = ids[b, :n]
        keep = torch.ones_like(frames, dtype=torch.bool)
        keep[1:] = frames[1:] != frames[:-1]
        tokens = [t for t in frames[keep].tolist() if t != vocab.blank]
        hyps.append(Hypothesis(vocab.decode(tokens), tokens, float(best[b, :n].sum())))
    return hyps
