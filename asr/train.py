"""Training: CTC on the BiLSTM with fused AdamW, warm-up + cosine decay, mixed precision,
DistributedDataParallel under torchrun, and exact resume.

Leaves in OUT:
    last.pt      everything needed to continue exactly where it stopped: weights, optimizer,
                 scheduler, grad scaler, position in the epoch, every rank's RNG states. Written
                 every `checkpoint_every` steps, at the end of each epoch, and on SIGTERM,
                 SIGUSR1 or Ctrl-C (cluster preemption), after which training stops cleanly.
    best.pt      the best epoch so far by dev WER (ties: dev loss); weights only
    epoch-N.pt   the `keep_best` best epochs, weights only: inputs for `asr average`
    log.jsonl    one JSON line per logging interval and one per epoch
    tensorboard/ the same numbers, when the tensorboard package is installed

Distributed: `torchrun --nproc_per_node=N -m asr train ...` (any --nnodes). Each rank takes its
share of every global batch (see BucketBatchSampler); the loss is averaged over the global batch,
so N processes make the same update as one process given the whole batch. Rank 0 alone writes.

Speed: the step loop adds no waits for the GPU except at logging intervals and checkpoints
(torch's CUDA CTC loss copies the lengths itself). A NaN/inf gradient
skips the update on the device (fused AdamW's `found_inf`, the hook GradScaler uses) and is
counted, instead of being checked on the host each step.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import time
from collections import Counter
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from asr import audio, checkpoint
from asr.checkpoint import resolve_device
from asr.augment import VTLP, SpecAugment, WaveAugment
from asr.config import Config, ConfigError, to_dict
from asr.data import (AudioDataset, BucketBatchSampler, ManifestError, Utterance, collate, first_of, load_audio,
                      parse_manifest)
from asr.decode import greedy
from asr.features import compute_stats
from asr.g2p import G2P, G2PError
from asr.model import count_parameters
from asr.score import Score, score
from asr.text import Vocabulary, read_lexicon

log = logging.getLogger("asr.train")

STOP_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGINT")


class TrainError(Exception):
    """Training cannot start; the message says why."""


class EpochResult(NamedTuple):
    epoch: int
    step: int
    train_loss: float
    dev_loss: float
    dev_wer: float
    dev_cer: float
    seconds: float  # wall time of training so far, resumed runs included


class TrainResult(NamedTuple):
    out_dir: Path
    history: list[EpochResult]
    best_wer: float
    steps: int
    seconds: float
    parameters: int
    skipped_steps: int = 0  # updates skipped for a NaN/inf gradient
    skipped_bad: int = 0  # manifest lines and audio files left out by train.skip_bad
    stopped_by: str | None = None  # the signal that stopped training early, e.g. "SIGTERM"


@dataclass
class Progress:
    """Where training stands; saved in last.pt so that a resumed run continues exactly."""

    epoch: int = 0  # the epoch in progress (0-based)
    batch: int = 0  # batches of it already trained
    step: int = 0
    epochs: int = 0  # the schedule's length where train.max_minutes refitted it (0: train.epochs)
    seconds: float = 0.0  # wall time of earlier runs
    skipped: int = 0  # steps skipped for NaN/inf gradients, in all
    epoch_sums: list = field(default_factory=lambda: [0.0] * len(_SUMS))  # this epoch, all ranks
    pending: list = field(default_factory=lambda: [0.0] * len(_SUMS))  # since the last log line
    best: list = field(default_factory=list)  # [{"epoch", "wer", "loss", "file"}], best first
    history: list = field(default_factory=list)  # EpochResult dicts


# What each step adds up, on the device; read only at logging intervals and checkpoints.
_SUMS = ("loss", "utterances", "good_steps", "skipped_steps", "grad_norm", "samples", "stop")


class Distributed(NamedTuple):
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def fits_ctc(utt: Utterance, vocab: Vocabulary, config: Config) -> bool:
    """Whether the model has enough output frames for the transcript (CTC needs one per unit,
    plus a blank between repeated units)."""
    ids = vocab.encode(utt.text)
    frames = int(utt.duration * 1000 / config.features.hop_ms) + 1
    steps = math.ceil(frames / config.model.stack)
    repeats = sum(a == b for a, b in zip(ids, ids[1:]))
    return 0 < len(ids) + repeats <= steps


def _vocabulary(lexicon: str) -> Vocabulary:
    """Letters, or the phones of a pronunciation lexicon file."""
    if not lexicon:
        return Vocabulary()
    try:
        with open(lexicon, encoding="utf-8") as f:
            return Vocabulary(pronunciations=read_lexicon(f.read(), lexicon))
    except (OSError, UnicodeDecodeError) as e:
        raise TrainError(f"{lexicon}: cannot read the lexicon ({e})") from None
    except ValueError as e:
        raise TrainError(str(e)) from None


def _init_payload(name: str, config: Config) -> dict:
    """The model file fine-tuning starts from, checked against the config: the same network
    shape, and the front-end its normalisation statistics were computed on (the frame step may
    differ: it is a choice the front-end makes at any time)."""
    path = checkpoint.DEFAULT_MODEL if name == "default" else name
    try:
        payload = checkpoint.load(path)
    except checkpoint.CheckpointError as e:
        raise TrainError(f"train.init: {e}") from None
    shape = ("hidden", "layers", "stack")
    then, now = payload["config"].get("model", {}), to_dict(config)["model"]
    if any(then.get(k) != now[k] for k in shape):
        raise TrainError(f"train.init {name}: its model is " + " x ".join(f"{k} {then.get(k)}" for k in shape)
                         + ", the config's " + " x ".join(f"{k} {now[k]}" for k in shape) + ": make the config's model that shape")
    then, now = payload["config"].get("features", {}), to_dict(config)["features"]
    changed = [f"{k} {then.get(k)} -> {v}" for k, v in now.items() if k != "hop_ms" and then.get(k) != v]
    if changed:
        raise TrainError(f"train.init {name}: its features differ from the config's ({', '.join(changed)}): "
                         "its normalisation statistics hold for its own")
    return payload


def train(config: Config, out_dir: str | Path, resume: bool = False) -> TrainResult:
    """Train `config` into `out_dir`; under torchrun, as one rank of DistributedDataParallel."""
    ddp = _start_distributed(config.train.device)
    try:
        result = _Trainer(config, Path(out_dir), resume, ddp).run()
        if ddp.world_size > 1:
            # Every rank done before any tears the group down: rank 0 holds the rendezvous
            # store, and a rank still shutting down when it goes aborts ("terminate called
            # without an active exception", seen on a loaded machine).
            dist.barrier()
        return result
    finally:
        if ddp.world_size > 1:
            dist.destroy_process_group()


def _start_distributed(device_name: str) -> Distributed:
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Distributed(0, 0, 1, device)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        # Checked on every rank: were only the ranks without a GPU to stop, the rest would wait in
        # the process group's rendezvous until its timeout.
        per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", local_rank + 1)), torch.cuda.device_count()
        if per_node > gpus:
            raise ConfigError(f"torchrun started {per_node} processes on this node, which has {gpus} CUDA GPU(s): "
                              f"one process per GPU (--nproc_per_node={gpus}), or train.device=cpu")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, local_rank, world_size, device)


class _Trainer:
    def __init__(self, config: Config, out_dir: Path, resume: bool, ddp: Distributed):
        self.config, self.cfg, self.out_dir, self.ddp = config, config.train, out_dir, ddp
        cfg = self.cfg
        self.init = _init_payload(cfg.init, config) if cfg.init else None
        if self.init and cfg.lexicon:
            raise TrainError(f"train.init {cfg.init} brings its own lexicon: leave train.lexicon ({cfg.lexicon}) empty "
                             "(words it lacks get pronunciations from G2P)")
        self.vocab = _vocabulary(cfg.lexicon) if not self.init else checkpoint.vocabulary(self.init, cfg.init)
        self.device = ddp.device
        out_dir.mkdir(parents=True, exist_ok=True)
        self.last = out_dir / "last.pt"
        if self.last.exists() and not resume:
            raise TrainError(f"{self.last} exists: pass --resume to continue that run, or choose another --out")

        self.skipped_bad = 0
        self.added: dict[str, list[str]] = {}  # words given pronunciations by G2P
        self.g2p: G2P | None = None
        train_utts = self._spellable(cfg.train_manifest, self._manifest(cfg.train_manifest))
        self.utts = [u for u in train_utts if fits_ctc(u, self.vocab, config)]
        if len(self.utts) < len(train_utts) and ddp.main:
            log.warning("skipping %d training utterances too short for their transcripts", len(train_utts) - len(self.utts))
        if len(self.utts) < ddp.world_size:
            raise TrainError(f"{cfg.train_manifest}: {len(self.utts)} usable utterances, fewer than {ddp.world_size} processes")
        dev_utts = self._spellable(cfg.dev_manifest, self._manifest(cfg.dev_manifest)) if cfg.dev_manifest else []
        if self.added and ddp.main:
            listing = out_dir / "added_words.txt"
            listing.write_text("".join(f"{w} {' '.join(p)}\n" for w, p in self.added.items()), encoding="utf-8")
        try:
            wave_augment = WaveAugment(config.augment, cfg.seed) if config.augment.wave_augment else None
        except ValueError as e:
            raise TrainError(str(e)) from None
        noise = wave_augment.noise_files if wave_augment else []
        # Every header before the first step (on one rank: --skip-bad has filtered on every rank)
        self._on_main(lambda: (_check_audio(cfg.train_manifest, self.utts), _check_audio(cfg.dev_manifest, dev_utts),
                               _check_audio(config.augment.noise_dir, [Utterance(p, 0, "") for p in noise])))
        self.train_set = AudioDataset(self.utts, self.vocab, cache=cfg.cache_audio, augment=wave_augment,
                                      skip_unreadable=True)
        self.dev_set = AudioDataset(dev_utts, self.vocab, cache=cfg.cache_audio) if dev_utts else None

        _seed_everything(cfg.seed)
        self.features, self.model = checkpoint.build(config, self.vocab)
        if self.init:
            self.model.load_state_dict({k: v.float() for k, v in self.init["model"].items()})
        self.features.to(self.device)
        self.model.to(self.device)  # before the optimizer exists, so that its state lives there too
        torch.manual_seed(cfg.seed + ddp.rank)  # dropout and masks differ between ranks
        self.spec_augment = SpecAugment(config.augment) if config.augment.spec_augment else None
        self.vtlp = VTLP(config.augment.vtlp, config.features).to(self.device) if config.augment.vtlp else None
        self.amp_dtype, self.precision = _precision(cfg.precision, self.device)
        # A gradient scaler with bf16 too: under CUDA autocast, PyTorch runs cuDNN RNNs in fp16
        # whatever the autocast dtype (aten/src/ATen/cudnn/AutocastRNN.cpp casts to kHalf), so
        # the LSTM's gradients need fp16's protection against underflow even when all else is bf16.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.precision != "fp32" else None
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
        self.sampler = BucketBatchSampler([u.duration for u in self.utts], cfg.batch_seconds, seed=cfg.seed,
                                          max_batch_size=cfg.max_batch_size, rank=ddp.rank,
                                          world_size=ddp.world_size, epoch_keys=True)
        self.total_steps = cfg.max_steps or cfg.epochs * len(self.sampler)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, _warmup_cosine(cfg.warmup_steps, self.total_steps, cfg.min_lr_ratio))
        self.net = self.model
        if ddp.world_size > 1:
            # No device_ids: DDP would then move every input to the GPU, lengths included, and
            # packing needs those on the CPU (fetching them back would wait for the GPU).
            self.net = torch.nn.parallel.DistributedDataParallel(self.model)

        self.progress = Progress()
        if resume and self.last.exists():
            self._restore(checkpoint.load(self.last))
            if self.progress.epochs and not cfg.max_steps:  # a schedule the time budget refitted
                self._fit_schedule(min(self.progress.epochs, cfg.epochs))
        else:
            if ddp.main and not self.init:
                log.info("computing normalisation statistics on %s", cfg.train_manifest)
            self.stats = self.init["stats"] if self.init else self._on_main(lambda: _stats(self.utts, config))
        self.features.set_stats(self.stats["mean"], self.stats["std"])
        if ddp.main:
            for stale in out_dir.glob(".*.tmp"):  # left by a process killed while saving
                stale.unlink(missing_ok=True)
            log.info("model: %s parameters, %d train utterances (%.1f h), device %s x %d, %s",
                     f"{count_parameters(self.model):,}", len(self.utts), sum(u.duration for u in self.utts) / 3600,
                     self.device, ddp.world_size, self.precision)
        self.stop_signal: str | None = None  # set by a signal handler
        self.agreed_stop = False  # every rank has heard of one (see _gather_sums)
        self.sums = torch.zeros(len(_SUMS), dtype=torch.float64, device=self.device)

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> TrainResult:
        cfg, p = self.cfg, self.progress
        loader = torch.utils.data.DataLoader(
            self.train_set, batch_sampler=self.sampler, collate_fn=collate, num_workers=cfg.num_workers,
            pin_memory=self.device.type == "cuda", persistent_workers=cfg.num_workers > 0,
            worker_init_fn=_ignore_stop_signals,
            generator=torch.Generator().manual_seed(cfg.seed),  # leaves the global RNG to the model
        )
        self.log = _RunLog(self.out_dir, p.step, self.ddp.main)
        start = self.clock = self.t0 = time.monotonic()
        epoch_ends = [start]  # this process's, for the time budget
        stopped_by = None  # a signal that arrives after the last step stops nothing
        with _catch_stop_signals(self._on_signal):
            try:
                while p.epoch < (p.epochs or cfg.epochs) and not (cfg.max_steps and p.step >= cfg.max_steps):
                    self.sampler.set_epoch(p.epoch, start=p.batch)
                    bar = tqdm(total=len(self.sampler.global_batches), initial=p.batch, desc=f"epoch {p.epoch + 1}",
                               unit="batch", disable=None if self.ddp.main else True, leave=False, dynamic_ncols=True)
                    self.bar = bar
                    for batch in loader:
                        self._step(batch, self.sampler.global_size(p.batch))
                        p.batch += 1
                        p.step += 1
                        bar.update()
                        if p.step % cfg.log_every == 0:
                            self._log_interval()
                        if self.stop_requested:
                            break
                        if cfg.max_steps and p.step >= cfg.max_steps:
                            break
                        # (not at the epoch's last batch: the end of the epoch writes last.pt anyway)
                        if (cfg.checkpoint_every and p.step % cfg.checkpoint_every == 0
                                and p.batch < len(self.sampler.global_batches)):
                            self._save_last()
                    bar.close()
                    if not self.stop_requested:
                        self._end_epoch(finished=p.batch >= len(self.sampler.global_batches))
                    if self.stop_requested:  # (the end of an epoch is also where ranks agree on it)
                        self._save_last()
                        stopped_by = self.stop_signal
                        self.log.info(f"stopped by {stopped_by} at step {p.step}: {self.last} holds it; "
                                      f"continue with: asr train --resume {self.out_dir}")
                        break
                    epoch_ends.append(time.monotonic())
                    if cfg.max_minutes and p.epoch < (p.epochs or cfg.epochs):
                        epochs = self._on_main(lambda: self._epochs_in_budget(epoch_ends))  # ranks agree
                        if epochs <= p.epoch:
                            self.log.info(f"stopping: another epoch would pass the {cfg.max_minutes:g}-minute budget")
                            break
                        # Not from the first epoch alone: it also filled the audio cache (and, on a
                        # fine-tuning run, took 13 times as long as the next), so a schedule fitted to
                        # it would end long before the budget does; from the second epoch on, the
                        # schedule follows the measured speed, longer or shorter.
                        if not cfg.max_steps and len(epoch_ends) > 2 and epochs != (p.epochs or cfg.epochs):
                            self._fit_schedule(epochs)
                            self.log.info(f"the {cfg.max_minutes:g}-minute budget holds {epochs} epochs at this "
                                          f"speed: the learning-rate schedule now ends with epoch {epochs}")
            except RuntimeError as e:
                # A loader worker killed (out of memory, a crash in a decoder library): torch says
                # so in a RuntimeError. Name it in one line, with what the last checkpoint holds.
                if "DataLoader worker" not in str(e):
                    raise
                held = f"{self.last} holds the last checkpoint" if self.last.exists() else "no checkpoint was written yet"
                raise TrainError(f"a data loader worker died at step {p.step} ({' '.join(str(e).split())}); "
                                 f"{held}; continue with: asr train --resume {self.out_dir}") from None
            finally:
                self.log.close()
        history = [EpochResult(**h) for h in p.history]
        best_wer = p.best[0]["wer"] if p.best else math.inf
        return TrainResult(self.out_dir, history, best_wer, p.step, time.monotonic() - start,
                           count_parameters(self.model), p.skipped, self.skipped_bad, stopped_by)

    def _epochs_in_budget(self, ends: list[float]) -> int:
        """The epochs (in all, at most train.epochs) that end inside train.max_minutes of this
        process, at its speed so far: its first epoch also filled the audio cache, so it counts
        only while it is the only one (and then only to stop, not to refit the schedule)."""
        durations = [b - a for a, b in zip(ends, ends[1:])]
        per_epoch = sum(durations[1:] or durations) / len(durations[1:] or durations)
        left = self.cfg.max_minutes * 60 - (ends[-1] - ends[0])
        return min(self.cfg.epochs, self.progress.epoch + int(left // per_epoch))

    def _fit_schedule(self, epochs: int) -> None:
        """Warm-up and cosine decay over `epochs` epochs from here on, at the current step: a run
        that a time budget stops early still ends its schedule, at the low learning rate its
        best epochs come from, rather than half way down."""
        cfg = self.cfg
        self.progress.epochs = epochs
        self.total_steps = epochs * len(self.sampler)
        self.scheduler.lr_lambdas = [_warmup_cosine(cfg.warmup_steps, self.total_steps, cfg.min_lr_ratio)
                                     for _ in self.optimizer.param_groups]
        self._set_lr()

    def _set_lr(self) -> None:
        """The learning rate of the current step, from the schedule as it now stands."""
        for group, scale in zip(self.optimizer.param_groups, self.scheduler.lr_lambdas):
            group["lr"] = group["initial_lr"] * scale(self.scheduler.last_epoch)
        self.scheduler._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def stop_requested(self) -> bool:
        # Ranks agree on stopping only at logging intervals (see _log_interval); alone, at once.
        return self.agreed_stop if self.ddp.world_size > 1 else self.stop_signal is not None

    def _step(self, batch, global_size: int) -> None:
        cfg, device = self.cfg, self.device
        waves = batch.waves.to(device, non_blocking=True)
        targets = batch.targets.to(device, non_blocking=True)
        target_lengths = batch.target_lengths.to(device, non_blocking=True)
        feats, frames = self.features(waves, batch.wave_lengths)  # lengths stay on the CPU: no waiting
        if self.vtlp is not None:
            feats = self.vtlp(feats)
        if self.spec_augment is not None:
            feats = self.spec_augment(feats)
        autocast = torch.autocast(device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        with autocast:
            log_probs, out_lengths = self.net(feats, frames)
        # A stand-in for audio that could not be read has no transcript: weight 0 (every real
        # training utterance has one, see fits_ctc).
        weights = (target_lengths > 0).float()
        losses = F.ctc_loss(log_probs.float().transpose(0, 1), targets, out_lengths, batch.target_lengths,
                            blank=self.vocab.blank, reduction="none", zero_infinity=True) / target_lengths.clamp(min=1)
        losses = losses * weights
        # Sum over this rank's share, divided by the global batch; DDP averages over ranks, so
        # x world_size: the gradient is that of the mean over the whole global batch.
        loss = losses.sum() * (self.ddp.world_size / global_size)
        self.optimizer.zero_grad(set_to_none=True)
        (self.scaler.scale(loss) if self.scaler else loss).backward()
        if self.scaler:
            self.scaler.unscale_(self.optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        good = torch.isfinite(grad_norm)
        if self.scaler:  # it skips a non-finite step itself, also without waiting
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.found_inf = (~good).float()
            self.optimizer.step()
            del self.optimizer.found_inf
        self.scheduler.step()
        ok = good.double()
        samples = torch.full((), float(batch.wave_lengths.sum()), dtype=torch.float64, device=device)
        self.sums += torch.stack([  # in the order of _SUMS
            torch.where(good, losses.detach().sum().double(), 0.0), ok * weights.sum().double(), ok, 1 - ok,
            torch.where(good, grad_norm.detach().double(), 0.0), samples, torch.zeros_like(ok),
        ])

    def _gather_sums(self) -> list[float]:
        """Add up the device counters over ranks and into `pending` (waits for the device)."""
        p = self.progress
        if self.stop_signal:
            self.sums[_SUMS.index("stop")] += 1
        if self.ddp.world_size > 1:
            dist.all_reduce(self.sums)
        sums = self.sums.tolist()
        self.sums.zero_()
        self.agreed_stop = self.agreed_stop or sums[_SUMS.index("stop")] > 0
        sums[_SUMS.index("stop")] = 0.0
        p.pending = [a + b for a, b in zip(p.pending, sums)]
        return sums

    def _log_interval(self) -> None:
        p = self.progress
        self._gather_sums()
        s = dict(zip(_SUMS, p.pending))
        if not s["good_steps"] + s["skipped_steps"]:  # nothing since the last line
            return
        p.epoch_sums = [a + b for a, b in zip(p.epoch_sums, p.pending)]
        p.pending = [0.0] * len(_SUMS)
        skipped = round(s["skipped_steps"] / self.ddp.world_size)
        p.skipped += skipped
        now = time.monotonic()
        seconds, self.clock = now - self.clock, now
        audio_seconds = s["samples"] / self.config.features.sample_rate
        entry = {
            "step": p.step, "epoch": p.epoch + 1,
            "loss": round(s["loss"] / s["utterances"], 4) if s["utterances"] else None,
            "lr": self.scheduler.get_last_lr()[0],
            "grad_norm": round(s["grad_norm"] / s["good_steps"], 3) if s["good_steps"] else None,
            "audio_seconds_per_second": round(audio_seconds / seconds, 1),
            "frames_per_second": round(audio_seconds * 1000 / self.config.features.hop_ms / seconds),
            "skipped": skipped, "seconds": round(p.seconds + now - self.t0, 1),
        }
        self.log.write(entry)
        if self.bar.disable:
            self.log.info(f"epoch {entry['epoch']} step {p.step} loss {entry['loss']} lr {entry['lr']:.2e} "
                          f"{entry['audio_seconds_per_second']} audio-s/s" + (f" skipped {skipped}" if skipped else ""))
        else:
            self.bar.set_postfix(loss=entry["loss"], audio_s_per_s=entry["audio_seconds_per_second"], refresh=False)

    def _end_epoch(self, finished: bool) -> None:
        """Dev scores, the log line, best-K bookkeeping and last.pt. `finished` is False when
        max_steps stopped the epoch part-way: last.pt then keeps the position within it."""
        p = self.progress
        self._log_interval()
        s = dict(zip(_SUMS, p.epoch_sums))
        train_loss = s["loss"] / s["utterances"] if s["utterances"] else math.nan
        dev_loss, dev_score = self._evaluate() if self.dev_set else (math.nan, None)
        result = EpochResult(p.epoch + 1, p.step, train_loss, dev_loss, dev_score.wer if dev_score else math.nan,
                             dev_score.cer if dev_score else math.nan,
                             round(p.seconds + time.monotonic() - self.t0, 1))
        p.history.append(result._asdict())
        # a phone model's greedy output is phones: its "WER" counts phones and '|' (a phone error rate)
        units = "phones" if self.vocab.pronunciations else "letters"
        self.log.write({**result._asdict(), "skipped": p.skipped, "units": units})
        rates = (f"WER {dev_score.wer:.2f}%, CER {dev_score.cer:.2f}%" if units == "letters"
                 else f"phone error rate {dev_score.wer:.2f}%") if dev_score else ""
        dev = f", dev loss {dev_loss:.3f}, dev {rates}" if dev_score else ""
        self.log.info(f"epoch {result.epoch}: train loss {train_loss:.3f}{dev} ({result.seconds:.0f} s)")
        # Best: lowest dev WER, ties (100% in early epochs) broken by dev loss; without a dev
        # set, the lowest training loss.
        wer, loss = (dev_score.wer, dev_loss) if dev_score else (math.inf, train_loss)
        new_best, dropped = self._rank_epoch(result.epoch, wer, loss)
        if finished:
            p.epoch, p.batch, p.epoch_sums = p.epoch + 1, 0, [0.0] * len(_SUMS)
        # The epoch's files first, then last.pt that records them, then the files it no longer
        # lists: cut off anywhere, a resumed run's best list names files that exist.
        if self.ddp.main:
            weights = self._weights(epoch=result.epoch, step=p.step, dev_wer=wer, dev_loss=loss)
            if new_best:
                checkpoint.save(self.out_dir / new_best, weights)
            if p.best and p.best[0]["epoch"] == result.epoch or not (self.out_dir / "best.pt").exists():
                checkpoint.save(self.out_dir / "best.pt", weights)
        self._save_last()
        if self.ddp.main:
            for name in dropped:
                (self.out_dir / name).unlink(missing_ok=True)

    def _rank_epoch(self, epoch: int, wer: float, loss: float) -> tuple[str | None, list[str]]:
        """Enter the epoch into the best-K list: its file name if it made the list, and the
        files of the epochs it pushed off."""
        best = self.progress.best
        best[:] = [e for e in best if e["epoch"] != epoch]  # an epoch cut short by max_steps, then resumed
        entry = {"epoch": epoch, "wer": wer, "loss": loss, "file": f"epoch-{epoch}.pt"}
        best.append(entry)
        best.sort(key=lambda e: (e["wer"], e["loss"], -e["epoch"]))
        dropped = [e["file"] for e in best[self.cfg.keep_best:]]
        del best[self.cfg.keep_best:]
        return (entry["file"] if entry in best else None), dropped

    @torch.no_grad()
    def _evaluate(self) -> tuple[float, Score | None]:
        """Mean per-utterance dev loss and greedy WER/CER; each rank scores a share."""
        dataset = self.dev_set
        self.model.eval()
        order = sorted(range(len(dataset)), key=lambda i: dataset.utts[i].duration)[self.ddp.rank::self.ddp.world_size]
        share = BucketBatchSampler([dataset.utts[i].duration for i in order], self.cfg.batch_seconds, shuffle=False) if order else []
        losses, refs, hyps = [], [], []
        autocast = torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype else nullcontext()
        for positions in share:
            items = []
            for k in positions:
                try:
                    items.append(dataset[order[k]])
                except audio.AudioError as e:  # not scored; raising would leave other ranks waiting
                    log.warning("dev utterance not scored: %s", e)
            if not items:
                continue
            batch = collate(items)
            feats, frames = self.features(batch.waves.to(self.device), batch.wave_lengths)
            with autocast:
                log_probs, out_lengths = self.model(feats, frames)
            loss = F.ctc_loss(log_probs.float().transpose(0, 1), batch.targets.to(self.device), out_lengths,
                              batch.target_lengths, blank=self.vocab.blank, reduction="none", zero_infinity=True)
            losses += (loss.cpu() / batch.target_lengths.clamp(min=1)).tolist()  # (an empty transcript: no inf)
            hyps += [h.text for h in greedy(log_probs.float().cpu(), out_lengths.cpu(), self.vocab)]
            refs += [self.vocab.decode(t[:n].tolist()) for t, n in zip(batch.targets, batch.target_lengths)]
        self.model.train()
        if self.ddp.world_size > 1:
            shares = [None] * self.ddp.world_size
            dist.all_gather_object(shares, (losses, refs, hyps))
            losses, refs, hyps = (sum((s[k] for s in shares), []) for k in range(3))
        if not refs:  # every dev file failed to load: no figure, rather than a perfect 0% WER
            log.warning("no dev utterance could be scored this epoch")
            return math.nan, None
        return float(np.mean(losses)), score(refs, hyps)

    # -- checkpoints ----------------------------------------------------------------------------

    def _weights(self, **extra) -> dict:
        lexicon = {"lexicon": self.vocab.lexicon_text()} if self.vocab.pronunciations else {}
        return {"model": self.model.state_dict(), "config": to_dict(self.config), "vocab": self.vocab.units,
                "stats": self.stats, **lexicon, **extra}

    def _save_last(self) -> None:
        """All ranks take part (their RNG states are gathered); rank 0 writes."""
        self._gather_sums()
        p = self.progress
        rng = [_rng_state(self.device)]
        if self.ddp.world_size > 1:
            rng = [None] * self.ddp.world_size
            dist.all_gather_object(rng, _rng_state(self.device))
        if not self.ddp.main:
            return
        saved = asdict(p)
        saved["seconds"] = p.seconds + time.monotonic() - self.t0
        checkpoint.save(self.last, {
            **self._weights(), "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler else None, "progress": saved, "rng": rng,
            "world_size": self.ddp.world_size,
            # read by `asr evaluate`-style tools and older code: the same facts, flat
            "epoch": p.epoch, "step": p.step, "history": p.history,
            "best_wer": p.best[0]["wer"] if p.best else math.inf,
        })

    def _restore(self, payload: dict) -> None:
        now, then = to_dict(self.config)["model"], payload["config"]["model"]
        if then != now:
            raise TrainError(f"{self.last}: was trained with model {then}, the config now says {now}")
        # The saved normalisation statistics belong to the features they were computed on.
        now, then = to_dict(self.config)["features"], payload["config"]["features"]
        changed = {k: (v, now.get(k)) for k, v in then.items() if now.get(k) != v}
        if changed:
            raise TrainError(f"{self.last}: was trained with other features ("
                             + ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()) + "); start a new run")
        if "progress" not in payload:
            raise TrainError(f"{self.last}: written by an older asr without a training position; start a new run")
        if payload.get("lexicon", "") != self.vocab.lexicon_text():
            raise TrainError(f"{self.last}: was trained with another lexicon than {self.cfg.lexicon or 'none (letters)'}: "
                             "resume with the run's own")
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        # The config's learning rate and weight decay hold from here on, as its checkpoints will say
        # (loading the optimizer's state brought back the old run's).
        cfg = self.config.train
        self.scheduler.base_lrs = [cfg.lr for _ in self.optimizer.param_groups]
        for group in self.optimizer.param_groups:
            group.update(initial_lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._set_lr()
        if self.scaler and payload.get("scaler"):
            self.scaler.load_state_dict(payload["scaler"])
        self.stats = payload["stats"]
        self.progress = Progress(**payload["progress"])
        then_world = payload.get("world_size", 1)
        if then_world != self.ddp.world_size and self.progress.batch:
            # An epoch's batches are cut for a process count: the rest of the old cut is not the
            # rest of the new one (some utterances would be skipped), so the epoch starts again.
            if self.ddp.main:
                log.warning("%s was cut off in epoch %d on %d processes, not %d: that epoch starts again "
                            "(its first %d batches are trained twice)", self.last, self.progress.epoch + 1,
                            then_world, self.ddp.world_size, self.progress.batch)
            self.progress.batch, self.progress.epoch_sums = 0, [0.0] * len(_SUMS)
        rng = payload.get("rng") or []
        if len(rng) == self.ddp.world_size:
            _set_rng_state(rng[self.ddp.rank], self.device)
        elif self.ddp.main:
            log.warning("%s was written by %d processes, not %d: random draws will differ from an unbroken run",
                        self.last, len(rng), self.ddp.world_size)
        if self.ddp.main:
            log.info("resumed from %s at epoch %d, step %d", self.last, self.progress.epoch + 1, self.progress.step)

    # -- helpers --------------------------------------------------------------------------------

    def _on_signal(self, name: str) -> None:
        if self.stop_signal is None:
            self.stop_signal = name
            if self.ddp.main:
                log.warning("%s: saving a checkpoint and stopping after this step", name)

    def _manifest(self, path: str) -> list[Utterance]:
        """The manifest's utterances. A bad line stops training before it starts, unless
        train.skip_bad: then bad lines and unreadable audio files are left out, each reported
        and all counted (every rank filters alike: headers read the same everywhere)."""
        utts, problems = parse_manifest(path)
        if problems and not self.cfg.skip_bad:
            raise TrainError(f"{first_of(problems, 'bad lines')}; --skip-bad trains without them")
        if self.cfg.skip_bad:
            unreadable = _unreadable(utts)
            problems += [f"{path}: {problem}" for problem in unreadable.values()]
            utts = [u for i, u in enumerate(utts) if i not in unreadable]
            if self.ddp.main:
                for problem in problems:
                    log.warning("skipped: %s", problem)
            self.skipped_bad += len(problems)
            if not utts:
                raise TrainError(f"{path}: no usable utterance left after skipping {len(problems)} bad ones")
        return utts

    def _spellable(self, path: str, utts: list[Utterance]) -> list[Utterance]:
        """With a lexicon, the utterances whose every word it spells; the others are reported.
        Words it lacks are first given pronunciations by the packaged G2P (asr/g2p.py): they join
        the lexicon, the model file carries them, and OUT/added_words.txt lists them."""
        lacking = [self.vocab.unspellable(u.text) for u in utts]
        self._add_pronunciations(path, sorted({w for words in lacking for w in words}))
        missing = Counter()
        kept = []
        for u, words in zip(utts, lacking):
            words = [w for w in words if w not in self.vocab.pronunciations]
            missing.update(words)
            if not words:
                kept.append(u)
        if missing and self.ddp.main:
            common = ", ".join(f"{w} ({n})" for w, n in missing.most_common(5))
            log.warning("%s: %d utterances left out, with %d words the lexicon %s lacks: %s", path,
                        len(utts) - len(kept), len(missing), self.cfg.lexicon, common)
        if utts and not kept:
            raise TrainError(f"{path}: the lexicon {self.cfg.lexicon} spells none of its utterances")
        return kept

    def _add_pronunciations(self, path: str, lacking: list[str]) -> None:
        if not lacking:
            return
        try:
            if self.g2p is None:  # loaded once, for the training and the dev manifest
                self.g2p = G2P.load()
            guessed = self.g2p(lacking)
        except G2PError as e:
            log.warning("no pronunciations for %d words the lexicon lacks: %s", len(lacking), e)
            return
        added = {w: p for w, p in guessed.items() if not self.vocab.foreign(p)}
        for w, p in added.items():
            self.vocab.pronunciations[w] = [p]
        self.added.update(added)
        if added and self.ddp.main:
            log.info("%s: %d words the lexicon lacks pronounced by G2P (%s), listed in %s", path, len(added),
                     ", ".join(f"{w} {' '.join(p)}" for w, p in list(added.items())[:3]),
                     self.out_dir / "added_words.txt")

    def _on_main(self, fn: Callable):
        """fn() on rank 0 only; every rank gets its result, or raises its error."""
        outcome = None
        if self.ddp.main:
            try:
                outcome = ("ok", fn())
            except (TrainError, ManifestError, audio.AudioError, ValueError) as e:
                outcome = ("error", str(e))
        if self.ddp.world_size > 1:
            box = [outcome]
            dist.broadcast_object_list(box, src=0)
            outcome = box[0]
        if outcome[0] == "error":
            raise TrainError(outcome[1])
        return outcome[1]


class _RunLog:
    """log.jsonl (and TensorBoard when installed) on rank 0; nothing elsewhere."""

    def __init__(self, out_dir: Path, resume_step: int, main: bool):
        self.main = main
        self.file = self.tensorboard = None
        if not main:
            return
        path = out_dir / "log.jsonl"
        # A run killed after its last checkpoint logged steps that the resumed run repeats.
        kept = []
        if resume_step and path.exists():
            kept = [line for line in path.read_text(encoding="utf-8", errors="replace").splitlines()
                    if _step_of(line) <= resume_step]
        self.file = open(path, "w", encoding="utf-8")
        self.file.writelines(line + "\n" for line in kept)
        self.file.flush()
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            pass
        else:
            self.tensorboard = SummaryWriter(str(out_dir / "tensorboard"), purge_step=resume_step or None)

    def write(self, entry: dict) -> None:
        if not self.main:
            return
        # null, not NaN (which is not JSON): no dev set, or nothing to average yet
        entry = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in entry.items()}
        self.file.write(json.dumps(entry) + "\n")
        self.file.flush()
        if self.tensorboard:
            prefix = "epoch" if "dev_wer" in entry else "train"
            for key, value in entry.items():
                if key not in ("step", "epoch") and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"{prefix}/{key}", value, entry["step"])

    def info(self, message: str) -> None:
        if self.main:
            log.info(message)

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tensorboard:
            self.tensorboard.close()


def _step_of(line: str) -> float:
    """The step a log line records; infinite for a line torn by a kill (dropped on resume)."""
    try:
        return json.loads(line)["step"]
    except (ValueError, KeyError, TypeError):
        return math.inf


class _catch_stop_signals:
    """SIGTERM, SIGUSR1 and the first Ctrl-C call `handler(name)` instead of killing the process;
    a second Ctrl-C interrupts at once. Previous handlers come back on exit."""

    def __init__(self, handler: Callable[[str], None]):
        self.handler = handler
        self.previous = {}

    def _handle(self, signum, frame):
        name = signal.Signals(signum).name
        if name == "SIGINT":
            signal.signal(signal.SIGINT, signal.default_int_handler)
        self.handler(name)

    def __enter__(self):
        for name in STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _ignore_stop_signals(worker_id: int) -> None:
    """Loader workers outlive a SIGTERM sent to the whole process group (as SLURM does), so
    that the main process can finish its step and save; it stops them itself."""
    for name in STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


def _precision(name: str, device: torch.device) -> tuple[torch.dtype | None, str]:
    """The autocast dtype (None: fp32) and its name."""
    if name == "auto":
        name = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "fp32"
    if name != "fp32" and device.type != "cuda":
        # oneDNN has no reduced-precision LSTM on most CPUs ("could not create a primitive")
        raise TrainError(f"train.precision={name} needs a CUDA device; on {device.type} use fp32 (or auto)")
    if name == "bf16" and not torch.cuda.is_bf16_supported():
        raise TrainError(f"train.precision=bf16: {torch.cuda.get_device_name(device)} has no bfloat16; use fp16")
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[name], name


def _check_audio(manifest: str, utts: list[Utterance]) -> None:
    """Read every header before the first step: a bad file stops training now, not an hour in."""
    problems = list(_unreadable(utts).values())
    if problems:
        raise TrainError(f"{manifest}: {first_of(problems, 'unreadable files')}; --skip-bad trains without them")


def _unreadable(utts: list[Utterance]) -> dict[int, str]:
    """{index: 'PATH: problem'} for each utterance whose audio header cannot be read."""
    problems = {}
    for i, u in enumerate(utts):
        try:
            seconds = audio.duration(u.audio_filepath)
        except audio.AudioError as e:
            problems[i] = str(e)
            continue
        if u.offset is not None and u.offset >= seconds:
            problems[i] = f"{u.audio_filepath}: segment starts at {u.offset:g} s, past the end of the file ({seconds:.2f} s)"
    return problems


def _stats(utts: list[Utterance], config: Config) -> dict:
    """Normalisation statistics over (at most `stats_utterances` of) the training audio, as
    recorded: augmentation is not applied."""
    indices = list(range(len(utts)))
    random.Random(config.train.seed).shuffle(indices)

    def waves():
        for i in indices[: config.train.stats_utterances]:
            try:
                yield load_audio(utts[i])
            except audio.AudioError as e:  # a header fine, the rest not (a truncated FLAC)
                if not config.train.skip_bad:
                    raise
                log.warning("skipped for the statistics: %s", e)  # and in training, batch by batch

    mean, std = compute_stats(waves(), config.features)
    return {"mean": mean, "std": std}


def _rng_state(device: torch.device) -> dict:
    """Every generator training draws from, as plain lists and tensors (weights_only-loadable)."""
    version, state, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(state), gauss],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
    }


def _set_rng_state(state: dict, device: torch.device) -> None:
    version, values, gauss = state["python"]
    random.setstate((version, tuple(values), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and state["cuda"] is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def _warmup_cosine(warmup: int, total: int, min_ratio: float):
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return factor


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
