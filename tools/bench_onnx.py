"""onnxruntime against our PyTorch path: the same model, clips and threads, emissions only.

    asr export exp/an4_sa/best.pt /tmp/an4.onnx
    python tools/bench_onnx.py --model exp/an4_sa/best.pt --onnx /tmp/an4.onnx --manifest data/an4/test.jsonl

Both run the same front-end (log-mel, normalisation, stacking) in PyTorch; what differs is the
network: torch's CPU LSTM path against onnxruntime's. Clips go in batches of `--batch` in
manifest order; each path runs the whole set `--repeat` times after one warm-up pass, and the
best time counts. Also prints the largest difference in log-probability between the two.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.checkpoint import OnnxRecognizer, load_recognizer  # noqa: E402
from asr.data import load_audio, read_manifest  # noqa: E402
from asr.transcribe import emissions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model file (.pt) the ONNX file was exported from")
    parser.add_argument("--onnx", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    ours, theirs = load_recognizer(args.model), OnnxRecognizer(args.onnx, threads=args.threads)
    utts = read_manifest(args.manifest)
    waves = [torch.from_numpy(load_audio(u)) for u in utts]
    batches = [waves[i:i + args.batch] for i in range(0, len(waves), args.batch)]
    seconds = sum(len(w) for w in waves) / 16000

    worst = 0.0
    for batch in batches:
        a, lengths = emissions(ours, batch)
        b, _ = theirs.emissions(batch)
        valid = torch.arange(a.shape[1])[None] < lengths[:, None]
        worst = max(worst, float((a - b).abs()[valid].max()))

    print(f"{len(utts)} clips, {seconds:.1f} s of audio, batches of {args.batch}, {args.threads} threads; "
          f"best of {args.repeat} after a warm-up")
    times = {}
    for name, run in (("pytorch", lambda b: emissions(ours, b)), ("onnxruntime", theirs.emissions)):
        best = float("inf")
        for i in range(args.repeat + 1):
            start = time.perf_counter()
            for batch in batches:
                run(batch)
            if i:
                best = min(best, time.perf_counter() - start)
        times[name] = best
        print(f"{name:12s} {best:7.2f} s  real-time factor {best / seconds:.4f}")
    print(f"onnxruntime / pytorch time: {times['onnxruntime'] / times['pytorch']:.2f}; "
          f"largest log-probability difference {worst:.2e}")


if __name__ == "__main__":
    main()
