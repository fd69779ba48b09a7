"""Compare the recording conditions of manifests: level, speaking rate and pitch.

A model that does well on dev and badly on test often meets a different voice or channel there;
this prints, per manifest, the mean RMS level (dBFS), characters per second, and the median F0
of voiced frames (librosa's pYIN) over a sample of clips.

    python tools/compare_splits.py data/lj/train.jsonl data/lj/dev.jsonl data/lj/test.jsonl [--clips 8]
"""

from __future__ import annotations

import argparse

import librosa
import numpy as np

from asr import audio
from asr.data import load_audio, read_manifest
from asr.text import normalize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifests", nargs="+")
    parser.add_argument("--clips", type=int, default=8, help="clips per manifest for the pitch estimate")
    args = parser.parse_args()
    print(f"{'manifest':30s} {'clips':>5s} {'RMS dBFS':>9s} {'chars/s':>8s} {'median F0 (Hz)':>15s}")
    for path in args.manifests:
        utts = read_manifest(path)
        rate = np.mean([len(normalize(u.text)) / u.duration for u in utts])
        sample = utts[:: max(1, len(utts) // args.clips)][: args.clips]
        levels, pitches = [], []
        for u in sample:
            wave = load_audio(u)  # the utterance, not its whole recording where it is a segment
            levels.append(20 * np.log10(np.sqrt(np.mean(wave**2)) + 1e-10))
            f0, voiced, _ = librosa.pyin(wave, fmin=60, fmax=450, sr=audio.SAMPLE_RATE, frame_length=1024)
            pitches.append(np.nanmedian(f0[voiced]) if voiced.any() else np.nan)
        print(f"{path:30s} {len(utts):5d} {np.mean(levels):9.1f} {rate:8.2f} {np.nanmedian(pitches):15.0f}")


if __name__ == "__main__":
    main()
