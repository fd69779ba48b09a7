"""Training throughput: asr's whole training step against the bare LSTM it is built around.

    python tools/bench_train.py --config conf/ljspeech_cpu.yaml
    python tools/bench_train.py --config conf/tiny.yaml --set model.hidden=1024 model.layers=5 \
        --device cuda --batch 32 --seconds 15

The training step is asr's own (`asr.train._Trainer._step`: log-mel, SpecAugment, BiLSTM under
autocast, CTC, backward, clipping, fused AdamW), run on a fixed synthetic batch so that only the
device is measured (loading is `tools/bench_features.py`'s). The reference is `torch.nn.LSTM`
alone (cuDNN on a GPU), forward and backward on the same shapes and precision. Our goal on a GPU:
the step reaches at least 70% of the bare LSTM's throughput. `--check-syncs` counts the step's
host-device synchronisations (CUDA only).

What the machine can do: the step's useful GFLOP/s (the LSTM's and output layer's matrix
products, forward and backward, counted from the shapes) beside a plain matrix product's on the
same device and threads, at a large square size (the machine's practical peak) and at the shape
one LSTM time step multiplies (batch x (input + hidden) by (input + hidden) x 4 hidden), which is
what a recurrence is limited to: it cannot batch over time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from asr.config import load_config  # noqa: E402
from asr.data import Utterance, collate, write_manifest  # noqa: E402
from asr.model import count_parameters  # noqa: E402
from asr.train import _start_distributed, _Trainer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "conf" / "ljspeech_cpu.yaml"))
    parser.add_argument("--set", nargs="+", action="extend", default=[], metavar="SECTION.KEY=VALUE")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"])
    parser.add_argument("--batch", type=int, default=8, help="utterances per batch")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each utterance")
    parser.add_argument("--chars-per-second", type=float, default=14.7, help="transcript rate (LJ Speech: 14.7)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--check-syncs", action="store_true", help="count host-device syncs per step (CUDA)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        config = load_config(args.config, args.set + [
            f"train.device={args.device}", f"train.precision={args.precision}",
            f"train.train_manifest={_synthetic_manifest(Path(tmp), args)}", "train.dev_manifest=''",
            "train.stats_utterances=2", "train.num_workers=0", "train.cache_audio=false",
            "augment.speed_perturb=[]", "augment.noise_dir=''",  # loader-side: not measured here
            f"train.batch_seconds={args.batch * args.seconds + 1}", "train.max_batch_size=0"])
        trainer = _Trainer(config, Path(tmp) / "exp", resume=False, ddp=_start_distributed(args.device))
        batch = collate([trainer.train_set[i] for i in range(args.batch)])
        device = trainer.device

        def step():
            trainer._step(batch, args.batch)

        step_seconds = _time(step, args, device, check_syncs=args.check_syncs)
        lstm_seconds = _time(_bare_lstm(trainer, batch), args, device)

    audio = args.batch * args.seconds
    frames = audio * 1000 / config.features.hop_ms
    m = config.model
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"device: {where}; torch {torch.__version__}; precision {trainer.precision}")
    print(f"model: BiLSTM {m.layers}x{m.hidden}, stack {m.stack}, {count_parameters(trainer.model):,} parameters")
    print(f"batch: {args.batch} x {args.seconds:g} s = {audio:g} s of audio, {frames:.0f} frames; "
          f"median of {args.steps} steps after {args.warmup} warm-up")
    for name, seconds in (("asr training step", step_seconds), ("bare nn.LSTM fwd+bwd", lstm_seconds)):
        print(f"{name:22s} {seconds * 1000:9.1f} ms/step {audio / seconds:9.1f} audio-s/s {frames / seconds:10.0f} frames/s")
    print(f"ratio: {lstm_seconds / step_seconds:.0%} of the bare LSTM's throughput")
    flops = _useful_flops(config, trainer.model.output.out_features, frames)
    big = _matmul_gflops(2048, 2048, 2048, device, trainer.amp_dtype)
    m_in = config.features.n_mels * m.stack
    recurrent = _matmul_gflops(args.batch, m.hidden + max(m_in, 2 * m.hidden), 4 * m.hidden, device, trainer.amp_dtype)
    print(f"useful work: {flops / 1e9:.3g} GFLOP/step -> {flops / step_seconds / 1e9:.3g} GFLOP/s "
          f"({flops / step_seconds / 1e9 / big:.0%} of a 2048^3 matmul's {big:.1f} GFLOP/s; "
          f"{flops / step_seconds / 1e9 / recurrent:.0%} of a one-time-step-shaped matmul's {recurrent:.1f} GFLOP/s)")
    if args.check_syncs:
        print(f"host syncs per step: {_time.syncs}")


def _useful_flops(config, units: int, frames: float) -> float:
    """Multiply-adds x 2 of the BiLSTM's gate products and the output layer over the batch's
    `frames`, forward and backward (backward: twice the forward's, for the inputs' and the
    weights' gradients; the first layer needs no input gradient, so this slightly overcounts)."""
    m = config.model
    steps = frames / m.stack
    size_in = config.features.n_mels * m.stack
    forward = 0.0
    for layer in range(m.layers):
        forward += 2 * 2 * 4 * m.hidden * (size_in + m.hidden) * steps  # two directions
        size_in = 2 * m.hidden
    forward += 2 * size_in * units * steps
    return 3 * forward


def _matmul_gflops(rows: int, inner: int, cols: int, device, dtype) -> float:
    """A plain matrix product's GFLOP/s at this shape (the best of 20 after warm-up)."""
    a = torch.randn(rows, inner, device=device, dtype=dtype or torch.float32)
    b = torch.randn(inner, cols, device=device, dtype=dtype or torch.float32)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    repeat = max(1, int(2e8 / (rows * inner * cols)))  # ~0.4 GFLOP a timing, so small shapes are timeable
    best = float("inf")
    for i in range(25):
        start = time.perf_counter()
        for _ in range(repeat):
            a @ b
        sync()
        if i >= 5:
            best = min(best, time.perf_counter() - start)
    return 2 * rows * inner * cols * repeat / best / 1e9


def _synthetic_manifest(folder: Path, args) -> Path:
    """`--batch` files of `--seconds` of noise with letter transcripts at `--chars-per-second`."""
    rng = np.random.default_rng(0)
    letters = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ "))
    utts = []
    for i in range(args.batch):
        path = folder / f"{i}.wav"
        sf.write(path, (0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32), 16000)
        text = "".join(rng.choice(letters, int(args.seconds * args.chars_per_second))).strip() or "A"
        utts.append(Utterance(str(path), args.seconds, " ".join(text.split())))
    write_manifest(folder / "train.jsonl", utts)
    return folder / "train.jsonl"


def _bare_lstm(trainer, batch):
    """torch.nn.LSTM with the model's sizes on the model's LSTM input shape, nothing else."""
    m, f = trainer.config.model, trainer.config.features
    lstm = torch.nn.LSTM(f.n_mels * m.stack, m.hidden, m.layers, bidirectional=True, batch_first=True,
                         dropout=m.dropout if m.layers > 1 else 0.0).to(trainer.device)
    steps = int(trainer.features.num_frames(batch.wave_lengths).max()) // m.stack + 1
    x = torch.randn(len(batch.wave_lengths), steps, f.n_mels * m.stack, device=trainer.device)
    autocast = torch.autocast(trainer.device.type, dtype=trainer.amp_dtype) if trainer.amp_dtype else nullcontext()

    def step():
        lstm.zero_grad(set_to_none=True)
        with autocast:
            y, _ = lstm(x)
        y.float().sum().backward()
    return step


def _time(fn, args, device, check_syncs: bool = False) -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        fn()
    sync()
    times = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(args.steps):
            start = time.perf_counter()
            if check_syncs and device.type == "cuda":
                torch.cuda.set_sync_debug_mode("warn")  # around the step only, not our own sync()
            fn()
            if check_syncs and device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
            sync()
            times.append(time.perf_counter() - start)
    if check_syncs:
        _time.syncs = sum("synchroniz" in str(w.message) for w in caught) / args.steps
        for message in sorted({str(w.message).splitlines()[0] for w in caught}):
            print(f"  sync: {message}")
    return statistics.median(times)


_time.syncs = 0.0

if __name__ == "__main__":
    main()
