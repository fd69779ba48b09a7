"""Manifests (JSON lines), the training dataset, and the length-bucketing batch sampler.

A manifest line is NeMo's format, so users can bring theirs:
    {"audio_filepath": "/data/a.flac", "duration": 3.2, "text": "HELLO WORLD"}
Relative audio paths are taken relative to the manifest's folder.
"""

from __future__ import annotations

import json
import math
import os
import random
from pathlib import Path
from typing import Iterator, NamedTuple

import torch

from asr import audio
from asr.text import Vocabulary


class Utterance(NamedTuple):
    audio_filepath: str
    duration: float
    text: str


class ManifestError(Exception):
    """A manifest that cannot be used; the message names the file and the first bad line."""


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ManifestError(f"{path}: cannot read manifest ({type(e).__name__}: {e.strerror or e})") from None
    utts, problems = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            utts.append(_parse_line(line, path.parent))
        except ValueError as e:
            problems.append(f"{path}:{number}: {e}")
    if problems:
        more = f" (and {len(problems) - 1} more bad lines)" if len(problems) > 1 else ""
        raise ManifestError(problems[0] + more)
    if not utts:
        raise ManifestError(f"{path}: manifest has no utterances")
    return utts


def _parse_line(line: str, root: Path) -> Utterance:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(entry, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in Utterance._fields if k not in entry]
    if missing:
        raise ValueError(f"missing key {', '.join(repr(k) for k in missing)}")
    path, dur, text = entry["audio_filepath"], entry["duration"], entry["text"]
    if not isinstance(path, str) or not path:
        raise ValueError("'audio_filepath' must be a non-empty string")
    if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not math.isfinite(dur) or dur <= 0:
        raise ValueError(f"'duration' must be a positive number, got {dur!r}")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    if not os.path.isabs(path):
        path = str(root / path)
    return Utterance(path, float(dur), text)


def write_manifest(path: str | os.PathLike, utts: list[Utterance]) -> None:
    """Write atomically: a reader never sees half a manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for u in utts:
            f.write(json.dumps(u._asdict(), ensure_ascii=False) + "\n")
    os.replace(tmp, path)


class AudioDataset(torch.utils.data.Dataset):
    """(waveform, token ids) pairs. `cache=True` keeps decoded audio in memory after first use,
    worth it for small corpora trained for many epochs on a CPU. `speeds` (e.g. [0.9, 1.0, 1.1])
    plays each item at a speed drawn from the list (speed perturbation, Ko et al. 2015)."""

    def __init__(self, utts: list[Utterance], vocab: Vocabulary, cache: bool = False,
                 speeds: list[float] | None = None, seed: int = 0):
        self.utts = utts
        self.vocab = vocab
        self.targets = [torch.tensor(vocab.encode(u.text), dtype=torch.long) for u in utts]
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.speeds = list(speeds or [])
        self.rng = random.Random(seed)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        wave = self.cache.get(i) if self.cache is not None else None
        if wave is None:
            wave = torch.from_numpy(audio.load(self.utts[i].audio_filepath))
            if self.cache is not None:
                self.cache[i] = wave
        if self.speeds:
            wave = torch.from_numpy(audio.change_speed(wave.numpy(), self.rng.choice(self.speeds)))
        return wave, self.targets[i]


class Batch(NamedTuple):
    waves: torch.Tensor  # (B, N) zero-padded
    wave_lengths: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B, L) zero-padded token ids
    target_lengths: torch.Tensor  # (B,)

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in self))


def collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    waves, targets = zip(*items)
    return Batch(
        torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
        torch.tensor([len(w) for w in waves]),
        torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
        torch.tensor([len(t) for t in targets]),
    )


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances under a budget of padded audio seconds.

    Each epoch the durations are jittered (so batches differ between epochs), sorted, cut into
    batches whose padded size (longest x count) fits `batch_seconds`, and the batch order is
    shuffled, all from `seed + epoch`. An utterance longer than the budget gets a batch of its own.
    """

    def __init__(self, durations: list[float], batch_seconds: float, seed: int = 0,
                 shuffle: bool = True, max_batch_size: int = 0):
        if batch_seconds <= 0:
            raise ValueError("batch_seconds must be positive")
        self.durations = list(durations)
        self.batch_seconds = batch_seconds
        self.seed = seed
        self.shuffle = shuffle
        self.max_batch_size = max_batch_size
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        rng = random.Random(self.seed + epoch)
        if self.shuffle:
            keys = [d * rng.uniform(0.9, 1.1) for d in self.durations]
        else:
            keys = self.durations
        order = sorted(range(len(self.durations)), key=keys.__getitem__)
        batches, current, longest = [], [], 0.0
        for i in order:
            longest_if_added = max(longest, self.durations[i])
            full = self.max_batch_size and len(current) >= self.max_batch_size
            if current and (longest_if_added * (len(current) + 1) > self.batch_seconds or full):
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        self.batches = batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
