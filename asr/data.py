"""Manifests (JSON lines), the training dataset, and the length-bucketing batch sampler.

A manifest line is NeMo's format, so users can bring theirs:
    {"audio_filepath": "/data/a.flac", "duration": 3.2, "text": "HELLO WORLD"}
Relative audio paths are taken relative to the manifest's folder. Optional keys: "offset" (NeMo's:
the utterance is the `duration` seconds from `offset` of a longer recording, as a Kaldi
`segments` line says), "utt_id" and "speaker" (kept for Kaldi data directories).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
from pathlib import Path
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch

from asr import audio
from asr.text import Vocabulary

log = logging.getLogger("asr.data")


class Utterance(NamedTuple):
    audio_filepath: str
    duration: float
    text: str
    offset: float | None = None  # None: the whole file; else a segment of it from here
    utt_id: str | None = None
    speaker: str | None = None


REQUIRED = ("audio_filepath", "duration", "text")


def load_audio(u: Utterance) -> np.ndarray:
    """The utterance's audio: its file, or its segment of the file."""
    if u.offset is None:
        return audio.load(u.audio_filepath)
    return audio.load(u.audio_filepath, start=u.offset, seconds=u.duration)


class ManifestError(Exception):
    """A manifest that cannot be used; the message names the file and the first bad line."""


def read_manifest(path: str | os.PathLike) -> list[Utterance]:
    """Every utterance of the manifest; ManifestError, naming the first bad line, if any is bad."""
    utts, problems = parse_manifest(path)
    if problems:
        raise ManifestError(first_of(problems, "bad lines"))
    return utts


def first_of(problems: list[str], what: str) -> str:
    """The first problem, and how many more: one line for a list of them."""
    return problems[0] + (f" (and {len(problems) - 1} more {what})" if len(problems) > 1 else "")


def parse_manifest(path: str | os.PathLike) -> tuple[list[Utterance], list[str]]:
    """The utterances of the good lines, and one line 'PATH:LINE: problem' for each bad one.
    ManifestError when the file cannot be read or holds no good line at all."""
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
    if not utts:
        raise ManifestError(first_of(problems, "bad lines") if problems else f"{path}: manifest has no utterances")
    return utts, problems


def _parse_line(line: str, root: Path) -> Utterance:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"invalid JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(entry, dict):
        raise ValueError("expected a JSON object")
    missing = [k for k in REQUIRED if k not in entry]
    if missing:
        raise ValueError(f"missing key {', '.join(repr(k) for k in missing)}")
    path, dur, text = entry["audio_filepath"], entry["duration"], entry["text"]
    if not isinstance(path, str) or not path:
        raise ValueError("'audio_filepath' must be a non-empty string")
    if isinstance(dur, bool) or not isinstance(dur, (int, float)) or not math.isfinite(dur) or dur <= 0:
        raise ValueError(f"'duration' must be a positive number, got {dur!r}")
    if not isinstance(text, str):
        raise ValueError("'text' must be a string")
    offset = entry.get("offset")
    if offset is not None and (isinstance(offset, bool) or not isinstance(offset, (int, float))
                               or not math.isfinite(offset) or offset < 0):
        raise ValueError(f"'offset' must be a number of seconds >= 0, got {offset!r}")
    for key in ("utt_id", "speaker"):
        if entry.get(key) is not None and not isinstance(entry[key], str):
            raise ValueError(f"{key!r} must be a string")
    if not os.path.isabs(path):
        path = str(root / path)
    return Utterance(path, float(dur), text, None if offset is None else float(offset),
                     entry.get("utt_id"), entry.get("speaker"))


def write_manifest(path: str | os.PathLike, utts: list[Utterance]) -> None:
    """Write atomically: a reader never sees half a manifest."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for u in utts:
            f.write(json.dumps({k: v for k, v in u._asdict().items() if k in REQUIRED or v is not None},
                               ensure_ascii=False) + "\n")
    os.replace(tmp, path)


class AudioDataset(torch.utils.data.Dataset):
    """(waveform, token ids) pairs. `cache=True` keeps decoded audio in memory after first use,
    worth it for small corpora trained for many epochs on a CPU. With `skip_unreadable` (the
    training set), an unreadable file or a silent one with words is a stand-in of no weight.

    A key is an index, or `(index, epoch)` when `augment` is given: the augmentation drawn for
    an utterance is a function of the epoch and the index, not of the process that loads it.
    """

    def __init__(self, utts: list[Utterance], vocab: Vocabulary, cache: bool = False,
                 augment: Callable[[np.ndarray, int, int], np.ndarray] | None = None, skip_unreadable: bool = False):
        self.utts = utts
        self.skip_unreadable = skip_unreadable
        self.vocab = vocab
        self.targets = [torch.tensor(vocab.encode(u.text), dtype=torch.long) for u in utts]
        self.cache: dict[int, torch.Tensor] | None = {} if cache else None
        self.augment = augment
        self.silent: set[int] = set()  # training utterances found silent, each reported once

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        i, epoch = key if isinstance(key, tuple) else (key, 0)
        wave = self.cache.get(i) if self.cache is not None else None
        if wave is None:
            try:
                wave = torch.from_numpy(load_audio(self.utts[i]))
            except audio.AudioError as e:
                if not self.skip_unreadable:
                    raise
                # A file that went bad after the check before training (a flaky mount, a file
                # replaced): one line, and a stand-in the trainer gives no weight (no transcript).
                # Raising here would stop this rank while the others wait for it in a collective.
                log.warning("skipped for this batch: %s", e)
                return _stand_in()
            if self.skip_unreadable and len(self.targets[i]) and self._silent(i, wave):
                return _stand_in()
            if self.cache is not None:
                self.cache[i] = wave
        if self.augment is not None:
            wave = torch.from_numpy(self.augment(wave.numpy(), epoch, i))
        return wave, self.targets[i]

    def _silent(self, i: int, wave: torch.Tensor) -> bool:
        """Whether utterance i's audio holds no speech, said once a file: words on silence (the
        Asterisk prompts' "ten seconds of silence") would teach the model to say them in every
        pause and over silent files."""
        peak = audio.peak_dbfs(wave.numpy())
        if peak >= audio.SILENT_DBFS:
            return False
        if i not in self.silent:
            self.silent.add(i)
            text = self.utts[i].text
            log.warning("not trained on: %s: silent (peak %.0f dBFS), yet transcribed %r",
                        self.utts[i].audio_filepath, peak, text if len(text) <= 60 else text[:57] + "...")
        return True


def _stand_in() -> tuple[torch.Tensor, torch.Tensor]:
    """0.1 s of silence and no transcript: an item the trainer gives no weight."""
    return torch.zeros(audio.SAMPLE_RATE // 10), torch.zeros(0, dtype=torch.long)


class Batch(NamedTuple):
    waves: torch.Tensor  # (B, N) zero-padded
    wave_lengths: torch.Tensor  # (B,)
    targets: torch.Tensor  # (B, L) zero-padded token ids
    target_lengths: torch.Tensor  # (B,)

    def to(self, device) -> "Batch":
        return Batch(*(t.to(device, non_blocking=True) for t in self))


def collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> Batch:
    """Pad into one batch, longest first: cuDNN's packed LSTM then needs no re-ordering."""
    items = sorted(items, key=lambda item: len(item[0]), reverse=True)
    waves, targets = zip(*items)
    return Batch(
        torch.nn.utils.rnn.pad_sequence(waves, batch_first=True),
        torch.tensor([len(w) for w in waves]),
        torch.nn.utils.rnn.pad_sequence(targets, batch_first=True),
        torch.tensor([len(t) for t in targets]),
    )


class BucketBatchSampler(torch.utils.data.Sampler):
    """Batches of similar-length utterances under a budget of padded audio seconds per process.

    Each epoch the durations are jittered (so batches differ between epochs), sorted, cut into
    global batches, and the batch order is shuffled, all from `seed + epoch`: every rank computes
    the same list. A global batch holds what `world_size` processes can take within the budget
    (padded size = longest x count per process) and each rank takes every `world_size`-th
    utterance of it, so its share is about as long as the others'. A global batch has at least
    `world_size` utterances (one longer than the budget gets a batch of its own per rank); the
    few left over at the end of an epoch, too few for every rank, wait for the next epoch.

    With `epoch_keys=True` it yields `(index, epoch)` keys for an augmenting `AudioDataset`.
    `set_epoch(epoch, start=k)` skips the first k batches: where a resumed run left off.
    """

    def __init__(self, durations: list[float], batch_seconds: float, seed: int = 0, shuffle: bool = True,
                 max_batch_size: int = 0, rank: int = 0, world_size: int = 1, epoch_keys: bool = False):
        if batch_seconds <= 0:
            raise ValueError("batch_seconds must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        if len(durations) < world_size:
            raise ValueError(f"{len(durations)} utterances cannot be shared among {world_size} processes")
        self.durations = list(durations)
        self.batch_seconds = batch_seconds
        self.seed = seed
        self.shuffle = shuffle
        self.max_batch_size = max_batch_size
        self.rank, self.world_size = rank, world_size
        self.epoch_keys = epoch_keys
        self.set_epoch(0)

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start
        rng = random.Random(self.seed + epoch)
        keys = [d * rng.uniform(0.9, 1.1) for d in self.durations] if self.shuffle else self.durations
        order = sorted(range(len(self.durations)), key=keys.__getitem__)
        w = self.world_size
        batches, current, longest = [], [], 0.0
        for i in order:
            longest_if_added = max(longest, self.durations[i])
            per_rank = -(-(len(current) + 1) // w)  # ceil: the largest share after adding i
            over = longest_if_added * per_rank > self.batch_seconds or (self.max_batch_size and per_rank > self.max_batch_size)
            if len(current) >= w and over:
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if len(current) >= w:
            batches.append(current)
        if self.shuffle:
            rng.shuffle(batches)
        self.global_batches = batches

    @property
    def batches(self) -> list[list[int]]:
        """This rank's batches for the whole epoch (including any skipped by `start`)."""
        return [batch[self.rank::self.world_size] for batch in self.global_batches]

    def global_size(self, k: int) -> int:
        """Utterances in the k-th step of the epoch over all ranks: what a loss is averaged over."""
        return len(self.global_batches[k])

    def __iter__(self) -> Iterator[list]:
        for batch in self.batches[self.start:]:
            yield [(i, self.epoch) for i in batch] if self.epoch_keys else batch

    def __len__(self) -> int:
        return len(self.global_batches) - self.start
