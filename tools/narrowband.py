"""A telephone-band copy of a test set: every utterance of a manifest, read as our recogniser
reads it (16 kHz mono), resampled to 8 kHz and written as 16-bit WAV, with a manifest of the
copies. It measures how a model holds up on telephone audio and 8 kHz recordings, the audio that
`augment.narrowband` imitates in training (recipes/default/ablation.md).

    python tools/narrowband.py --manifest data/default/an4_test.jsonl --out data/default/an4_test_8k
    asr evaluate --manifest data/default/an4_test_8k/manifest.jsonl
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr import audio
from asr.augment import NARROW_RATE
from asr.data import load_audio, read_manifest, write_manifest


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the WAV files and manifest.jsonl")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    copies, failed = [], 0
    for index, u in enumerate(read_manifest(args.manifest)):
        try:
            wave = load_audio(u)
        except audio.AudioError as e:  # one bad file is reported and skipped, as `asr evaluate` does
            print(f"narrowband: {e}", file=sys.stderr)
            failed += 1
            continue
        wav = args.out / f"{index:05d}_{Path(u.audio_filepath).stem}.wav"
        narrow = soxr.resample(wave, audio.SAMPLE_RATE, NARROW_RATE, quality="HQ")
        sf.write(wav, np.clip(narrow, -1, 1), NARROW_RATE, subtype="PCM_16")
        copies.append(u._replace(audio_filepath=str(wav.resolve()), offset=None))
    write_manifest(args.out / "manifest.jsonl", copies)
    print(f"narrowband: {len(copies)} utterances at {NARROW_RATE} Hz in {args.out}" + (f", {failed} failed" if failed else ""))
    return 0 if copies else 1


if __name__ == "__main__":
    sys.exit(main())
