"""Training: CTC loss, AdamW, clipping, warm-up + cosine decay, dev WER and checkpoints each epoch.

Leaves OUT/last.pt (after every epoch), OUT/best.pt (best dev WER so far) and OUT/log.jsonl
(one JSON line per logging interval and per epoch).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from asr import audio, checkpoint
from asr.config import Config, to_dict
from asr.data import AudioDataset, BucketBatchSampler, Utterance, collate, read_manifest
from asr.decode import greedy
from asr.features import SpecAugment, compute_stats
from asr.model import count_parameters
from asr.score import Score, score
from asr.text import Vocabulary

log = logging.getLogger("asr.train")


class TrainError(Exception):
    """Training cannot start; the message says why."""


class EpochResult(NamedTuple):
    epoch: int
    step: int
    train_loss: float
    dev_loss: float
    dev_wer: float
    dev_cer: float
    seconds: float  # wall time since training started


class TrainResult(NamedTuple):
    out_dir: Path
    history: list[EpochResult]
    best_wer: float
    steps: int
    seconds: float
    parameters: int


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def fits_ctc(utt: Utterance, vocab: Vocabulary, config: Config) -> bool:
    """Whether the model has enough output frames for the transcript (CTC needs one per unit,
    plus a blank between repeated units)."""
    ids = vocab.encode(utt.text)
    frames = int(utt.duration * 1000 / config.features.hop_ms) + 1
    steps = math.ceil(frames / config.model.stack)
    repeats = sum(a == b for a, b in zip(ids, ids[1:]))
    return 0 < len(ids) + repeats <= steps


def train(config: Config, out_dir: str | Path, resume: bool = False) -> TrainResult:
    cfg = config.train
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = resolve_device(cfg.device)
    _seed_everything(cfg.seed)
    vocab = Vocabulary()

    train_utts = read_manifest(cfg.train_manifest)
    kept = [u for u in train_utts if fits_ctc(u, vocab, config)]
    if len(kept) < len(train_utts):
        log.warning("skipping %d training utterances too short for their transcripts", len(train_utts) - len(kept))
    if not kept:
        raise TrainError(f"{cfg.train_manifest}: no utterance has enough frames for its transcript")
    last = out_dir / "last.pt"
    if last.exists() and not resume:
        raise TrainError(f"{last} exists: pass --resume to continue that run, or choose another --out")
    dev_utts = read_manifest(cfg.dev_manifest) if cfg.dev_manifest else []
    _check_audio(cfg.train_manifest, kept)
    _check_audio(cfg.dev_manifest, dev_utts)
    train_set = AudioDataset(kept, vocab, cache=cfg.cache_audio, speeds=cfg.speed_perturb, seed=cfg.seed)
    dev_set = AudioDataset(dev_utts, vocab, cache=cfg.cache_audio) if dev_utts else None

    features, model = checkpoint.build(config, vocab)
    features.to(device)
    model.to(device)  # before the optimizer exists, so that its state lives on the same device
    augment = SpecAugment(config.augment) if config.augment.enabled else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = BucketBatchSampler([u.duration for u in kept], cfg.batch_seconds, seed=cfg.seed,
                                 max_batch_size=cfg.max_batch_size)
    total_steps = cfg.max_steps or cfg.epochs * len(sampler)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(cfg.warmup_steps, total_steps, cfg.min_lr_ratio))

    state = {"epoch": 0, "step": 0, "best_wer": math.inf, "best_loss": math.inf, "history": []}
    if resume and last.exists():
        payload = checkpoint.load(last)
        if payload["config"]["model"] != to_dict(config)["model"]:
            raise TrainError(f"{last}: was trained with model {payload['config']['model']}, "
                             f"the config now says {to_dict(config)['model']}")
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        stats = payload["stats"]
        state = {k: payload.get(k, v) for k, v in state.items()}
        log.info("resumed from %s at epoch %d, step %d", last, state["epoch"], state["step"])
    else:
        log.info("computing normalisation statistics on %s", cfg.train_manifest)
        stats = _stats(train_set, config)
    features.set_stats(stats["mean"], stats["std"])
    log.info("model: %s parameters, %d train utterances (%.1f h), device %s",
             f"{count_parameters(model):,}", len(kept), sum(u.duration for u in kept) / 3600, device)

    loader = torch.utils.data.DataLoader(
        train_set, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
        pin_memory=device.type == "cuda", persistent_workers=cfg.num_workers > 0,
    )
    log_file = open(out_dir / "log.jsonl", "a" if resume else "w", encoding="utf-8")
    start = time.monotonic()
    step = state["step"]
    first_epoch = state["epoch"]
    try:
        for epoch in range(first_epoch, cfg.epochs):
            if cfg.max_steps and step >= cfg.max_steps:  # a resumed run that had already finished
                break
            sampler.set_epoch(epoch)
            model.train()
            losses = []
            for batch in loader:
                batch = batch.to(device)
                feats, feat_lens = features(batch.waves, batch.wave_lengths)
                if augment is not None:
                    feats = augment(feats)
                log_probs, out_lens = model(feats, feat_lens)
                loss = F.ctc_loss(log_probs.transpose(0, 1), batch.targets, out_lens, batch.target_lengths,
                                  blank=vocab.blank, zero_infinity=True)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(loss.item())
                if step % cfg.log_every == 0:
                    _write(log_file, step=step, epoch=epoch + 1, loss=round(float(np.mean(losses[-cfg.log_every:])), 4),
                           lr=scheduler.get_last_lr()[0], grad_norm=round(float(grad_norm), 3),
                           seconds=round(time.monotonic() - start, 1))
                    log.info("epoch %d step %d loss %.3f", epoch + 1, step, np.mean(losses[-cfg.log_every:]))
                if cfg.max_steps and step >= cfg.max_steps:
                    break
            dev_loss, dev_score = _evaluate(features, model, vocab, dev_set, cfg.batch_seconds, device) if dev_set else (math.nan, None)
            train_loss = float(np.mean(losses)) if losses else math.nan
            # Best: lowest dev WER, ties (100% in early epochs) broken by dev loss. Without a
            # dev set, the lowest training loss.
            metric = (dev_score.wer, dev_loss) if dev_score else (math.inf, train_loss)
            result = EpochResult(epoch + 1, step, train_loss, dev_loss, dev_score.wer if dev_score else math.nan,
                                 dev_score.cer if dev_score else math.nan, time.monotonic() - start)
            state["history"].append(result._asdict())
            _write(log_file, **result._asdict())
            log.info("epoch %d: train loss %.3f, dev loss %.3f, dev WER %.2f%%, CER %.2f%% (%.0f s)",
                     *result[:1], *result[2:])
            is_best = metric < (state["best_wer"], state["best_loss"])
            if is_best:
                state["best_wer"], state["best_loss"] = metric
            payload = {
                "model": model.state_dict(), "config": to_dict(config), "vocab": vocab.units,
                "stats": {"mean": stats["mean"], "std": stats["std"]},
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "epoch": epoch + 1, "step": step, "best_wer": state["best_wer"], "best_loss": state["best_loss"],
                "history": state["history"],
            }
            checkpoint.save(last, payload)
            if is_best or not (out_dir / "best.pt").exists():
                checkpoint.save(out_dir / "best.pt", payload)
            if cfg.max_steps and step >= cfg.max_steps:
                break
            elapsed = time.monotonic() - start
            epochs_done = epoch + 1 - first_epoch
            if cfg.max_minutes and elapsed + elapsed / epochs_done > cfg.max_minutes * 60:
                log.info("stopping: another epoch would pass the %.0f-minute budget", cfg.max_minutes)
                break
    finally:
        log_file.close()
    history = [EpochResult(**h) for h in state["history"]]
    return TrainResult(out_dir, history, state["best_wer"], step, time.monotonic() - start, count_parameters(model))


def _check_audio(manifest: str, utts: list[Utterance]) -> None:
    """Read every header before the first step: a bad file stops training now, not an hour in."""
    problems = []
    for u in utts:
        try:
            audio.duration(u.audio_filepath)
        except audio.AudioError as e:
            problems.append(str(e))
    if problems:
        more = f" (and {len(problems) - 1} more unreadable files)" if len(problems) > 1 else ""
        raise TrainError(f"{manifest}: {problems[0]}{more}")


def _stats(dataset: AudioDataset, config: Config) -> dict:
    """Normalisation statistics over (at most `stats_utterances` of) the training audio."""
    indices = list(range(len(dataset)))
    random.Random(config.train.seed).shuffle(indices)
    mean, std = compute_stats((dataset[i][0].numpy() for i in indices[: config.train.stats_utterances]), config.features)
    return {"mean": mean, "std": std}


@torch.no_grad()
def _evaluate(features, model, vocab, dataset, batch_seconds, device) -> tuple[float, Score]:
    """Dev loss (mean over batches) and greedy WER/CER."""
    model.eval()
    sampler = BucketBatchSampler([u.duration for u in dataset.utts], batch_seconds, shuffle=False)
    losses, refs, hyps = [], [], []
    for indices in sampler:
        batch = collate([dataset[i] for i in indices]).to(device)
        feats, feat_lens = features(batch.waves, batch.wave_lengths)
        log_probs, out_lens = model(feats, feat_lens)
        loss = F.ctc_loss(log_probs.transpose(0, 1), batch.targets, out_lens, batch.target_lengths,
                          blank=vocab.blank, zero_infinity=True)
        losses.append(loss.item())
        hyps += [h.text for h in greedy(log_probs.cpu(), out_lens.cpu(), vocab)]
        refs += [vocab.decode(dataset.targets[i].tolist()) for i in indices]
    model.train()
    return float(np.mean(losses)), score(refs, hyps)


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


def _write(f, **entry) -> None:
    f.write(json.dumps(entry) + "\n")
    f.flush()
