"""How many times faster than real time the front-end runs on one CPU core.

Times, per clip and summed over all clips of a folder (default: the LJ Speech clips in
../shared/data): our audio loading + resampling to 16 kHz, our log-mel (torch), and librosa's
melspectrogram with the same parameters on the same 16 kHz audio.

    python tools/bench_features.py [--dir FOLDER] [--limit N] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch

from asr import audio
from asr.features import FeatureConfig, LogMel

DEFAULT_DIR = Path(__file__).resolve().parents[1].parent / "shared/data/ljspeech/LJSpeech-1.1/wavs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--limit", type=int, default=0, help="use the first N clips (0: all)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 = per core)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = sorted(p for p in args.dir.rglob("*") if p.suffix.lower() in audio.AUDIO_EXTENSIONS)
    files = files[: args.limit] if args.limit else files
    if not files:
        raise SystemExit(f"no audio files under {args.dir}")

    config = FeatureConfig()
    logmel = LogMel(config)
    c = config
    librosa_mel = dict(sr=c.sample_rate, n_fft=c.n_fft, win_length=c.win_length, hop_length=c.hop_length,
                       n_mels=c.n_mels, center=True, pad_mode="constant", power=2.0, norm="slaney")
    # Warm-up: first calls pay for lazy imports, FFT plans and numba compilation.
    warm = audio.load(files[0])
    logmel(torch.from_numpy(warm)[None], torch.tensor([len(warm)]))
    np.log(librosa.feature.melspectrogram(y=warm, **librosa_mel) + 1e-10)

    t_decode = t_load = t_ours = t_librosa = 0.0
    seconds = 0.0
    for path in files:
        t0 = time.perf_counter()
        sf.read(path, dtype="float32")  # decoding alone, to show what resampling adds
        t_decode += time.perf_counter() - t0
        t0 = time.perf_counter()
        wave = audio.load(path)
        t1 = time.perf_counter()
        feats, _ = logmel(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
        t2 = time.perf_counter()
        ref = np.log(librosa.feature.melspectrogram(y=wave, **librosa_mel) + 1e-10)
        t3 = time.perf_counter()
        assert feats.shape[1] == ref.shape[1]
        t_load, t_ours, t_librosa = t_load + t1 - t0, t_ours + t2 - t1, t_librosa + t3 - t2
        seconds += len(wave) / c.sample_rate

    print(f"{len(files)} files, {seconds / 60:.1f} min of audio, from {args.dir}; torch threads {args.threads}")
    rows = [
        ("  decode only (soundfile)", t_decode),
        ("load + resample (soundfile, soxr)", t_load),
        ("log-mel (torch, ours)", t_ours),
        ("load + resample + log-mel (ours)", t_load + t_ours),
        ("melspectrogram (librosa)", t_librosa),
        ("load + resample + melspectrogram (librosa)", t_load + t_librosa),
    ]
    for name, t in rows:
        print(f"{name:45s} {t:7.2f} s  {seconds / t:8.0f}x real time")


if __name__ == "__main__":
    main()
