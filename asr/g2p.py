"""Grapheme to phoneme: pronunciations for words a lexicon lacks, from their spelling alone.

A small BiLSTM trained with CTC on CMUdict (tools/train_g2p.py) and shipped in the package
(asr/models/g2p.pt): the acoustic model's own machinery, with letters in place of log-mel
frames. Each letter is read `repeat` times, so that a word can have more phones than letters
('X' is K S). Nothing beyond torch is needed, so training and transcription can spell a new
word after `pip install` alone; its phone error on held-out CMUdict words is in docs/g2p.md.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from asr.decode import collapse
from asr.model import BiLSTMCTC, ModelConfig

LETTERS = "'ABCDEFGHIJKLMNOPQRSTUVWXYZ"
BLANK = "<blank>"
DEFAULT_G2P = Path(__file__).resolve().parent / "models" / "g2p.pt"
_WORD = re.compile(r"[A-Z']+")


class G2PError(Exception):
    """A G2P model file that cannot be used; the message names the file."""


class G2P:
    """`g2p(["LAYLA", "JAYME"])` -> {"LAYLA": ["L", "EY", "L", "AH"], ...}: each word's likeliest
    pronunciation (greedy CTC), for words of letters and apostrophes; others are left out."""

    def __init__(self, model: BiLSTMCTC, phones: list[str], repeat: int):
        self.model, self.phones, self.repeat = model.eval(), phones, repeat

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> "G2P":
        path = Path(path or DEFAULT_G2P)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            model = build(ModelConfig(**payload["config"]), len(payload["phones"]))
            model.load_state_dict({k: v.float() for k, v in payload["model"].items()})
            return cls(model, payload["phones"], payload["repeat"])
        except FileNotFoundError:
            raise G2PError(f"{path}: no such G2P model file") from None
        except Exception as e:  # a damaged file: whatever torch.load or the model raise
            raise G2PError(f"{path}: not a usable G2P model ({type(e).__name__}: {e})") from None

    def payload(self) -> dict:
        """What `load` reads back (fp16 weights: the file is half the size)."""
        config = self.model.config
        return {"model": {k: v.half() for k, v in self.model.state_dict().items()},
                "config": {"hidden": config.hidden, "layers": config.layers, "dropout": config.dropout, "stack": 1},
                "phones": self.phones, "repeat": self.repeat}

    @torch.no_grad()
    def __call__(self, words: list[str]) -> dict[str, list[str]]:
        words = [w for w in dict.fromkeys(words) if _WORD.fullmatch(w) and w.strip("'")]
        result = {}
        for first in range(0, len(words), 256):
            batch = words[first:first + 256]
            x, lengths = encode(batch, self.repeat)
            log_probs, out_lengths = self.model(x, lengths)
            ids = log_probs.argmax(-1)
            for w, row, n in zip(batch, ids, out_lengths.tolist()):
                phones = [self.phones[i] for i in collapse(row[:n], blank=0)]
                if phones:
                    result[w] = phones
        return result


def build(config: ModelConfig, n_phones: int) -> BiLSTMCTC:
    """The network: one-hot letters in (stack 1), phones and the CTC blank (index 0) out."""
    return BiLSTMCTC(config, len(LETTERS), n_phones)


def encode(words: list[str], repeat: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, T, letters) one-hot inputs, each letter `repeat` frames, and their lengths."""
    lengths = torch.tensor([len(w) * repeat for w in words])
    x = torch.zeros(len(words), int(lengths.max()), len(LETTERS))
    for b, w in enumerate(words):
        for k, c in enumerate(w):
            x[b, k * repeat:(k + 1) * repeat, LETTERS.index(c)] = 1.0
    return x, lengths
