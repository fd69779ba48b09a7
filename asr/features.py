"""Log-mel front-end and global mean/variance normalisation.

Features are computed by torch on whatever device the waveform batch is on, so a GPU trainer
never waits for the CPU to make spectrograms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

import numpy as np
import torch
import torchaudio
from torch import nn


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    # Subtract each utterance's own mean log-mel before the global normalisation: a recording's
    # gain and its channel's tilt are constant offsets in the log domain, and this removes them.
    # The mean is over its active frames only (ACTIVE_DB, below).
    cmn: bool = True

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    def __post_init__(self):
        if min(self.sample_rate, self.n_mels, self.win_ms, self.hop_ms) <= 0:
            raise ValueError("sample_rate, n_mels, win_ms and hop_ms must be positive")
        if self.n_fft < self.win_length:
            raise ValueError(f"n_fft ({self.n_fft}) must be >= window length ({self.win_length} samples)")


# Frames more than this far below an utterance's loudest frame do not count in its mean: digital
# silence (padding, gaps cut to zero) sits at the log floor, ~100 dB down, and would drag the mean
# far from the speech's, so the same words padded with a second of zeros read as other features.
# A real recording's noise floor lies well inside 60 dB of its speech, so there every frame counts.
ACTIVE_DB = 60.0


def frame_energy(feats: torch.Tensor) -> torch.Tensor:
    """Log power of each frame (..., T) from log-mel frames (..., T, n_mels)."""
    return torch.logsumexp(feats, dim=-1)


def active_floor(loudest: torch.Tensor) -> torch.Tensor:
    """The lowest frame energy that counts in the mean, given the loudest frame's."""
    return loudest - ACTIVE_DB * math.log(10) / 10


class LogMel(nn.Module):
    """Waveforms (B, N) -> log-mel frames (B, T, n_mels): per-utterance mean removed (`cmn`),
    then globally normalised once stats are set.

    The mel filterbank is librosa's (Slaney scale and area normalisation) so that the features
    can be checked against librosa; `tests/test_features.py` does.
    """

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            win_length=config.win_length,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            power=2.0,
            center=True,
            pad_mode="constant",
            mel_scale="slaney",
            norm="slaney",
        )
        # Identity until `set_stats`; buffers so that .to(device) moves them.
        self.register_buffer("mean", torch.zeros(config.n_mels))
        self.register_buffer("std", torch.ones(config.n_mels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-5))

    def num_frames(self, lengths: torch.Tensor) -> torch.Tensor:
        return lengths // self.config.hop_length + 1

    def raw(self, waves: torch.Tensor) -> torch.Tensor:
        """Un-normalised log-mel (B, T, n_mels)."""
        power = self.mel(waves.float())  # (B, n_mels, T)
        return torch.log(power.clamp(min=1e-10)).transpose(1, 2)

    def local(self, waves: torch.Tensor, lengths: torch.Tensor,
              utterance_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-mel with each utterance's mean (over its own active frames, not the padding) removed;
        or `utterance_mean` (n_mels), the mean of a whole recording that arrives in windows."""
        feats, frames = self.raw(waves), self.num_frames(lengths)
        if self.config.cmn and utterance_mean is not None:
            feats = feats - utterance_mean.to(feats.device)
        elif self.config.cmn:
            # `lengths` may stay on the CPU (the model wants them there): copy without waiting
            n = frames.to(feats.device, non_blocking=True)
            valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < n[:, None]
            energy = frame_energy(feats)
            loudest = energy.masked_fill(~valid, -math.inf).amax(1, keepdim=True)
            counted = (valid & (energy >= active_floor(loudest)))[..., None]
            mean = (feats * counted).sum(1, keepdim=True) / counted.sum(1, keepdim=True).clamp(min=1)
            feats = feats - mean
        return feats, frames

    @torch.no_grad()
    def forward(self, waves: torch.Tensor, lengths: torch.Tensor,
                utterance_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = self.local(waves, lengths, utterance_mean)
        return (feats - self.mean) / self.std, frames


def compute_stats(waves: Iterable[np.ndarray], config: FeatureConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-bin mean and standard deviation of log-mel frames over all `waves` (float64 sums)."""
    logmel = LogMel(config)
    total = torch.zeros(config.n_mels, dtype=torch.float64)
    total_sq = torch.zeros(config.n_mels, dtype=torch.float64)
    count = 0
    for wave in waves:
        wave = torch.as_tensor(wave)[None]
        feats = logmel.local(wave, torch.tensor([wave.shape[1]]))[0][0].double()
        total += feats.sum(0)
        total_sq += (feats**2).sum(0)
        count += feats.shape[0]
    if count == 0:
        raise ValueError("no audio to compute normalisation statistics from")
    mean = total / count
    std = (total_sq / count - mean**2).clamp(min=1e-10).sqrt()
    return mean.float(), std.float()
