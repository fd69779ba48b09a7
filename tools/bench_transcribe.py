"""Transcription speed and memory, as a user meets them.

    python tools/bench_transcribe.py --manifest data/lj/test.jsonl [--model M.pt] [--hour]

1. Real-time factor (seconds of work per second of audio) over the manifest's files, with the
   model's default decoding (the LM beam search for the packaged model):
   - model load excluded: in this process, after the model and LM are loaded;
   - end to end: `asr transcribe FILES` as a user runs it, interpreter start, imports, model and
     LM load included.
2. --hour: one recording of an hour (the manifest's clips concatenated, repeated, written as a
   16 kHz FLAC) through `asr transcribe`: wall time, real-time factor and the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True, help="e.g. data/lj/test.jsonl")
    parser.add_argument("--model", help="default: the model inside the package")
    parser.add_argument("--hour", action="store_true", help="also a one-hour recording: time and peak RSS")
    parser.add_argument("--hour-seconds", type=float, default=3600.0)
    args = parser.parse_args()

    from asr import audio
    from asr.checkpoint import load_recognizer
    from asr.cli import _decoder, _parser
    from asr.data import read_manifest
    from asr.transcribe import transcribe

    paths = [u.audio_filepath for u in read_manifest(args.manifest)]
    seconds = sum(audio.duration(p) for p in paths)
    model_flag = ["--model", args.model] if args.model else []
    print(f"{len(paths)} files, {seconds:.1f} s of audio; {torch.get_num_threads()} threads; "
          f"{os.cpu_count()} CPUs; torch {torch.__version__}")

    start = time.perf_counter()
    recognizer = load_recognizer(args.model)
    decoder = _decoder(_parser().parse_args(["transcribe", "x", *model_flag]), recognizer)
    loaded = time.perf_counter()
    results = list(transcribe(recognizer, paths, decoder=decoder))
    done = time.perf_counter()
    assert not any(r.error for r in results), [r.error for r in results if r.error]
    print(f"decoding: {decoder.config.describe() if decoder else 'greedy'}")
    print(f"model load excluded: {done - loaded:.2f} s, RTF {(done - loaded) / seconds:.4f}  (load: {loaded - start:.2f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        wall, rss = _run([sys.executable, "-m", "asr", "transcribe", *model_flag, "--output-dir", tmp, *paths])
        print(f"end to end (`asr transcribe` on the {len(paths)} files): {wall:.2f} s, RTF {wall / seconds:.4f}, "
              f"peak RSS {rss / 1024:.0f} MB")
        if args.hour:
            waves = [audio.load(p) for p in paths]
            one = np.concatenate([np.concatenate([w, np.zeros(8000, np.float32)]) for w in waves])
            repeats = int(np.ceil(args.hour_seconds * audio.SAMPLE_RATE / len(one)))
            long_path = Path(tmp) / "hour.flac"
            with sf.SoundFile(long_path, "w", audio.SAMPLE_RATE, 1, format="FLAC") as f:
                left = int(args.hour_seconds * audio.SAMPLE_RATE)
                for _ in range(repeats):  # written piece by piece: this process stays small too
                    f.write(one[:left])
                    left -= min(left, len(one))
            length = audio.duration(long_path)
            wall, rss = _run([sys.executable, "-m", "asr", "transcribe", *model_flag, "--output-dir", tmp, str(long_path)])
            words = len((Path(tmp) / "hour.txt").read_text().split()) - 1
            print(f"one recording of {length / 60:.1f} min: {wall:.1f} s, RTF {wall / length:.4f}, "
                  f"peak RSS {rss / 1024:.0f} MB, {words} words")
    return 0


def _run(command: list[str]) -> tuple[float, int]:
    """Wall seconds and peak RSS (KiB) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{command[:4]} failed ({status})")
    return wall, usage.ru_maxrss


if __name__ == "__main__":
    sys.exit(main())
