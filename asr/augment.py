"""Training-time augmentation: speed perturbation, additive noise and telephone bandwidth on the
waveform (in the data loader); vocal tract length perturbation and SpecAugment on the normalised
features (on the training device).

Waveform draws come from a generator seeded by (seed, epoch, utterance): whichever worker,
rank or resumed run loads an utterance, it gets the same speed, noise file, offset, SNR and band.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soxr
import torch
import torchaudio
from torch import nn

from asr import audio
from asr.features import FeatureConfig

NARROW_RATE = 8000  # telephone audio's sample rate


@dataclass
class AugmentConfig:
    """Everything is off by default."""

    # SpecAugment (Park et al. 2019) on normalised features
    freq_masks: int = 0
    freq_width: int = 27  # widest frequency mask, in mel bins
    time_masks: int = 0
    time_width: int = 40  # widest time mask, in frames
    time_ratio: float = 0.2  # ... and never wider than this fraction of the batch's frames
    # Vocal tract length perturbation (Jaitly & Hinton 2013): each utterance's frequency axis
    # stretched by a factor drawn uniformly from [1 - vtlp, 1 + vtlp]; they used 0.1
    vtlp: float = 0.0
    # Speed perturbation (Ko et al. 2015): each utterance played at a speed drawn from the list
    speed_perturb: list = field(default_factory=list)  # e.g. [0.9, 1.0, 1.1]
    # Additive noise: a random stretch of a random file under noise_dir, at an SNR drawn
    # uniformly from noise_snr (dB), added to a noise_prob fraction of the utterances
    noise_dir: str = ""
    noise_prob: float = 0.5
    noise_snr: list = field(default_factory=lambda: [5.0, 20.0])
    # Narrowband: this fraction of the utterances resampled to 8 kHz and back, so that nothing
    # is left above 4 kHz, as in telephone audio and 8 kHz recordings heard at 16 kHz (a model
    # that only ever heard full-band fricatives loses them there)
    narrowband: float = 0.0

    def __post_init__(self):
        if min(self.freq_masks, self.freq_width, self.time_masks, self.time_width) < 0:
            raise ValueError("mask counts and widths must not be negative")
        if not (_number(self.vtlp) and 0 <= self.vtlp < 0.5):
            raise ValueError(f"vtlp must be in [0, 0.5), got {self.vtlp}")
        if not 0 < self.time_ratio <= 1:
            raise ValueError(f"time_ratio must be in (0, 1], got {self.time_ratio}")
        if not all(_number(s) and 0.5 <= s <= 2 for s in self.speed_perturb):
            raise ValueError(f"speed_perturb must list speeds between 0.5 and 2, got {self.speed_perturb}")
        if not 0 <= self.noise_prob <= 1:
            raise ValueError(f"noise_prob must be in [0, 1], got {self.noise_prob}")
        if len(self.noise_snr) != 2 or not all(map(_number, self.noise_snr)) or self.noise_snr[0] > self.noise_snr[1]:
            raise ValueError(f"noise_snr must be [low, high] in dB, got {self.noise_snr}")
        if not (_number(self.narrowband) and 0 <= self.narrowband <= 1):
            raise ValueError(f"narrowband must be a fraction in [0, 1], got {self.narrowband}")

    @property
    def spec_augment(self) -> bool:
        return self.freq_masks > 0 or self.time_masks > 0

    @property
    def wave_augment(self) -> bool:
        return bool(self.speed_perturb) or bool(self.noise_dir) or self.narrowband > 0


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class SpecAugment(nn.Module):
    """Independent random masks per utterance; masked values are 0, the normalised mean."""

    def __init__(self, config: AugmentConfig):
        super().__init__()
        self.config = config
        self.freq = torchaudio.transforms.FrequencyMasking(config.freq_width, iid_masks=True)
        self.time = torchaudio.transforms.TimeMasking(config.time_width, iid_masks=True, p=config.time_ratio)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = feats.transpose(1, 2).unsqueeze(1)  # (B, 1, F, T), the layout torchaudio masks
        for _ in range(self.config.freq_masks):
            x = self.freq(x)
        for _ in range(self.config.time_masks):
            x = self.time(x)
        return x.squeeze(1).transpose(1, 2)


class VTLP(nn.Module):
    """Vocal tract length perturbation on log-mel features (B, T, n_mels), a new factor per
    utterance: frequency f is heard at alpha * f up to a knee, and the band above it is mapped
    linearly onto what is left below Nyquist (Jaitly & Hinton's piecewise-linear warp). Done by
    reading each mel bin from its source position between bins, on the normalised features: the
    per-bin statistics change slowly from bin to bin, and it spares a filterbank per utterance."""

    def __init__(self, amount: float, features: FeatureConfig):
        super().__init__()
        self.amount = amount
        self.nyquist = features.sample_rate / 2
        self.knee = 0.3 * features.sample_rate  # 4.8 kHz at 16 kHz, as in the paper
        # The mel filterbank's centres, evenly spaced in mel from 0 (Slaney's scale, as features.LogMel):
        # centre k sits at (k + 1) * mel_step
        self.mel_step = float(_hz_to_mel(torch.tensor(self.nyquist, dtype=torch.float64))) / (features.n_mels + 1)
        centres = torch.arange(1, features.n_mels + 1, dtype=torch.float64) * self.mel_step
        self.register_buffer("centres_hz", _mel_to_hz(centres), persistent=False)

    def source_bins(self, alpha: torch.Tensor) -> torch.Tensor:
        """Warp factors (B,) -> the fractional mel bin (B, n_mels) that each output bin reads."""
        out_hz = self.centres_hz[None, :]
        a = alpha.to(torch.float64)[:, None]
        knee = self.knee * a.clamp(max=1.0)  # where the warp bends, in output frequency
        upper = self.nyquist - (self.nyquist - out_hz) * (self.nyquist - knee / a) / (self.nyquist - knee)
        src_hz = torch.where(out_hz <= knee, out_hz / a, upper)
        return (_hz_to_mel(src_hz) / self.mel_step - 1).clamp(0, len(self.centres_hz) - 1)

    def forward(self, feats: torch.Tensor, alpha: torch.Tensor | None = None) -> torch.Tensor:
        if alpha is None:  # the global generator, like SpecAugment's: saved with the run, resumed exactly
            alpha = 1 + self.amount * (2 * torch.rand(feats.shape[0], device=feats.device) - 1)
        pos = self.source_bins(alpha).to(feats.dtype)
        low = pos.floor().long().clamp(max=feats.shape[2] - 2)
        frac = (pos - low)[:, None, :]
        index = low[:, None, :].expand(-1, feats.shape[1], -1)
        below, above = feats.gather(2, index), feats.gather(2, index + 1)
        return below + (above - below) * frac


def _hz_to_mel(hz: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale (torchaudio's mel_scale="slaney"): linear to 1 kHz, logarithmic above."""
    return torch.where(hz < 1000, hz * 3 / 200, 15 + 27 * torch.log(hz.clamp(min=1e-10) / 1000) / math.log(6.4))


def _mel_to_hz(mel: torch.Tensor) -> torch.Tensor:
    return torch.where(mel < 15, mel * 200 / 3, 1000 * torch.exp((mel - 15) * math.log(6.4) / 27))


class WaveAugment:
    """Speed perturbation, additive noise and narrowband for one waveform, drawn from (seed,
    epoch, index)."""

    def __init__(self, config: AugmentConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        self.noise_files = find_noise(config.noise_dir) if config.noise_dir else []

    def __call__(self, wave: np.ndarray, epoch: int, index: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch, index])
        if self.config.speed_perturb:
            wave = audio.change_speed(wave, float(rng.choice(self.config.speed_perturb)))
        if self.noise_files and rng.random() < self.config.noise_prob:
            noise = audio.load(self.noise_files[rng.integers(len(self.noise_files))])
            wave = add_noise(wave, noise, rng.uniform(*self.config.noise_snr), rng)
        # drawn last, so that the draws above are what they were without it
        if self.config.narrowband and rng.random() < self.config.narrowband:
            wave = narrowband(wave)
        return wave


def narrowband(wave: np.ndarray, sample_rate: int = audio.SAMPLE_RATE) -> np.ndarray:
    """`wave` as an 8 kHz recording of it would load: the same length, nothing above 4 kHz."""
    down = soxr.resample(wave, sample_rate, NARROW_RATE, quality="HQ")
    up = soxr.resample(down, NARROW_RATE, sample_rate, quality="HQ")[:len(wave)]  # odd lengths come back one longer
    return np.pad(up, (0, len(wave) - len(up))).astype(np.float32, copy=False)


def find_noise(folder: str | os.PathLike) -> list[str]:
    """Every audio file under `folder` (recursively), sorted so that draws are reproducible."""
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"augment.noise_dir {folder}: not a directory")
    files = sorted(str(p) for p in root.rglob("*") if p.suffix.lower() in audio.AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise ValueError(f"augment.noise_dir {folder}: no audio files ({', '.join(audio.AUDIO_EXTENSIONS)})")
    return files


def add_noise(wave: np.ndarray, noise: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`wave` plus a random stretch of `noise` (looped if shorter) scaled to `snr_db`."""
    if len(noise) < len(wave):
        noise = np.tile(noise, -(-len(wave) // len(noise)))
    start = rng.integers(len(noise) - len(wave) + 1)
    noise = noise[start:start + len(wave)]
    signal_power, noise_power = np.mean(wave**2), np.mean(noise**2)
    if signal_power == 0 or noise_power == 0:  # silence in, or a silent noise file: nothing to scale to
        return wave
    scale = np.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (wave + scale * noise).astype(np.float32)
