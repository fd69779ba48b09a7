import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from asr import checkpoint
from asr.config import load_config
from asr.data import read_manifest, write_manifest
from asr.train import EpochResult, TrainError, train
from asr.transcribe import transcribe
from conftest import MEMORISED, ROOT, tone_speech, write_tone_corpus


def test_tiny_model_learns_and_decodes_a_memorised_utterance(memorised):
    losses = [h.train_loss for h in memorised.result.history]
    assert len(losses) == 25 and losses[-1] < 0.2 * losses[0], losses
    assert memorised.result.history[-1].dev_wer == 0.0, memorised.result.history[-1]
    recognizer = checkpoint.load_recognizer(memorised.exp / "best.pt")
    texts = [t.text for t in transcribe(recognizer, [u.audio_filepath for u in read_manifest(memorised.dev)])]
    assert texts == MEMORISED

    # The log has a line per logging interval and per epoch; both checkpoints hold everything.
    entries = [json.loads(line) for line in (memorised.exp / "log.jsonl").read_text().splitlines()]
    assert {"step", "loss", "lr", "grad_norm"} <= entries[0].keys()
    assert sum("dev_wer" in e for e in entries) == 25
    assert {e["units"] for e in entries if "dev_wer" in e} == {"letters"}  # tools/plot_training.py's label
    last = checkpoint.load(memorised.exp / "last.pt")
    assert {"optimizer", "scheduler", "stats", "vocab", "config", "history"} <= last.keys()
    assert last["epoch"] == 25 and last["best_wer"] == min(h.dev_wer for h in memorised.result.history)


def test_max_steps_stops_early_and_still_leaves_both_checkpoints(tmp_path, tone_manifest, tiny_config):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.batch_seconds = 3.0  # ~10 batches an epoch
    config.train.max_steps = 3
    result = train(config, tmp_path / "exp")
    assert result.steps == 3 and len(result.history) == 1
    assert isinstance(result.history[0], EpochResult) and math.isnan(result.history[0].dev_wer)
    assert (tmp_path / "exp" / "last.pt").exists() and (tmp_path / "exp" / "best.pt").exists()


def test_a_time_budget_ends_the_learning_rate_schedule_with_the_last_epoch_it_holds(tmp_path, tone_manifest,
                                                                                    tiny_config, monkeypatch, caplog):
    from types import SimpleNamespace

    from asr import train as train_module

    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.batch_seconds = 3.0  # ~10 batches an epoch
    config.train.epochs = 1
    steps = train(config, tmp_path / "count").steps  # an epoch's steps
    clock = [0.0]  # every step takes 10 s of this clock, nothing else any
    step = train_module._Trainer._step
    monkeypatch.setattr(train_module._Trainer, "_step", lambda self, *a: (step(self, *a), clock.__setitem__(0, clock[0] + 10)))
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    config.train.epochs, config.train.max_minutes = 10, 4.5 * steps * 10 / 60  # 4.5 epochs' time
    with caplog.at_level("INFO", logger="asr"):
        result = train(config, tmp_path / "exp")
    assert len(result.history) == 4 and result.steps == 4 * steps
    assert "budget holds 4 epochs at this speed: the learning-rate schedule now ends with epoch 4" in caplog.text
    # the schedule ran to its end, as a 4-epoch run's would, not 4/10 of the way down a 10-epoch one
    saved = checkpoint.load(tmp_path / "exp" / "last.pt")
    assert math.isclose(saved["scheduler"]["_last_lr"][0], config.train.lr * config.train.min_lr_ratio)
    # resumed without a budget, the run is finished: its schedule has ended
    config.train.max_minutes = 0
    assert train(config, tmp_path / "exp", resume=True).steps == 4 * steps


def test_a_slow_first_epoch_does_not_cut_the_schedule_short(tmp_path, tone_manifest, tiny_config, monkeypatch,
                                                              caplog):
    # The first epoch also fills the audio cache: a schedule fitted to its speed alone would end
    # at epoch 2 here, where the budget holds 4 at the speed of the epochs after it.
    from types import SimpleNamespace

    from asr import train as train_module

    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.batch_seconds = 3.0
    config.train.epochs = 1
    steps = train(config, tmp_path / "count").steps
    clock = [0.0]  # a step of the first epoch takes 20 s, later ones 10 s
    step = train_module._Trainer._step
    monkeypatch.setattr(train_module._Trainer, "_step", lambda self, *a: (
        step(self, *a), clock.__setitem__(0, clock[0] + (20 if self.progress.epoch == 0 else 10))))
    monkeypatch.setattr(train_module, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    config.train.epochs, config.train.max_minutes = 10, 5.5 * steps * 10 / 60  # 2 + 3 fast epochs' time
    with caplog.at_level("INFO", logger="asr"):
        result = train(config, tmp_path / "exp")
    assert len(result.history) == 4
    assert "the learning-rate schedule now ends with epoch 4" in caplog.text
    assert "ends with epoch 2" not in caplog.text


def test_resume_continues_from_the_last_epoch(tmp_path, tone_manifest, tiny_config):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.dev_manifest = str(tone_manifest.parent / "dev.jsonl")
    config.train.epochs = 1
    first = train(config, tmp_path / "exp")
    config.train.epochs = 2
    second = train(config, tmp_path / "exp", resume=True)
    assert [h.epoch for h in second.history] == [1, 2]
    assert second.steps > first.steps
    assert second.history[0] == first.history[0]


def test_a_finished_run_is_not_overwritten_without_resume(tmp_path, tone_manifest, tiny_config):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.max_steps = 1
    train(config, tmp_path / "exp")
    before = (tmp_path / "exp" / "last.pt").read_bytes()
    with pytest.raises(TrainError, match="pass --resume"):
        train(config, tmp_path / "exp")
    assert (tmp_path / "exp" / "last.pt").read_bytes() == before


def test_resume_refuses_a_different_model(tmp_path, tone_manifest, tiny_config):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.max_steps = 1
    train(config, tmp_path / "exp")
    config.model.hidden = 64
    with pytest.raises(TrainError, match="was trained with model"):
        train(config, tmp_path / "exp", resume=True)
    config.model = load_config(ROOT / "conf" / "tiny.yaml").model
    config.features.cmn = not config.features.cmn  # the saved statistics would no longer fit
    with pytest.raises(TrainError, match="was trained with other features \\(cmn "):
        train(config, tmp_path / "exp", resume=True)


def test_resume_takes_the_configs_learning_rate_and_weight_decay(tmp_path, tone_manifest, tiny_config):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.batch_seconds = 3.0
    config.train.max_steps = 1
    train(config, tmp_path / "exp")
    config.train.max_steps, config.train.lr, config.train.weight_decay = 2, config.train.lr / 2, 0.0
    train(config, tmp_path / "exp", resume=True)
    saved = checkpoint.load(tmp_path / "exp" / "last.pt")
    [group] = saved["optimizer"]["param_groups"]
    assert group["initial_lr"] == config.train.lr and group["weight_decay"] == 0.0
    assert saved["scheduler"]["base_lrs"] == [config.train.lr]


def test_resume_on_another_process_count_starts_the_cut_off_epoch_again(tmp_path, tone_manifest, tiny_config, caplog):
    config = tiny_config
    config.train.train_manifest = str(tone_manifest)
    config.train.batch_seconds = 3.0  # ~10 batches an epoch
    config.train.max_steps = 2
    train(config, tmp_path / "exp")
    last = checkpoint.load(tmp_path / "exp" / "last.pt")
    assert last["progress"]["batch"] == 2
    checkpoint.save(tmp_path / "exp" / "last.pt", {**last, "world_size": 2})  # as if cut off on 2 processes
    config.train.max_steps = 3
    with caplog.at_level("WARNING"):
        train(config, tmp_path / "exp", resume=True)
    assert "cut off in epoch 1 on 2 processes, not 1: that epoch starts again" in caplog.text
    assert checkpoint.load(tmp_path / "exp" / "last.pt")["progress"]["batch"] == 1  # one batch into it again


def test_unreadable_training_audio_stops_before_the_first_step(tmp_path, tone_manifest, tiny_config):
    from asr.data import write_manifest

    utts = read_manifest(tone_manifest)
    (tmp_path / "bad.wav").write_text("not audio")
    write_manifest(tmp_path / "m.jsonl", utts + [utts[0]._replace(audio_filepath=str(tmp_path / "bad.wav"))])
    config = tiny_config
    config.train.train_manifest = str(tmp_path / "m.jsonl")
    with pytest.raises(TrainError, match=r"m.jsonl: .*bad.wav: not a readable audio file"):
        train(config, tmp_path / "exp")
    assert not (tmp_path / "exp" / "last.pt").exists()


def test_a_killed_loader_worker_is_one_clear_error_and_the_run_resumes(tmp_path, tone_manifest, monkeypatch):
    from asr.data import AudioDataset

    parent, calls = os.getpid(), []
    original = AudioDataset.__getitem__

    def dies_on_the_30th_item(self, index):  # the worker is forked: it runs this copy
        calls.append(index)
        if os.getpid() != parent and len(calls) == 30:
            os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
        return original(self, index)

    monkeypatch.setattr(AudioDataset, "__getitem__", dies_on_the_30th_item)
    config = _config(tone_manifest, ["train.num_workers=1", "train.epochs=3"])
    with pytest.raises(TrainError, match=r"^a data loader worker died at step \d+ \(.*\); "
                                         rf"{re.escape(str(tmp_path / 'exp' / 'last.pt'))} holds the last checkpoint; "
                                         rf"continue with: asr train --resume {re.escape(str(tmp_path / 'exp'))}$"):
        train(config, tmp_path / "exp")
    monkeypatch.setattr(AudioDataset, "__getitem__", original)
    assert [h.epoch for h in train(config, tmp_path / "exp", resume=True).history] == [1, 2, 3]


def test_a_full_disk_at_a_checkpoint_keeps_the_previous_one_and_the_run_resumes(tmp_path, tone_manifest, monkeypatch):
    saves, real_save = [], torch.save

    def disk_fills_at_the_fourth_checkpoint(obj, f, *args, **kwargs):
        saves.append(1)  # epoch 1 writes epoch-1.pt, best.pt, last.pt; then epoch 2's first file fails
        if len(saves) == 4:
            f.write(b"half a checkpoint")
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    config = _config(tone_manifest, ["train.epochs=3"])
    monkeypatch.setattr(torch, "save", disk_fills_at_the_fourth_checkpoint)
    with pytest.raises(checkpoint.CheckpointError, match="No space left on device"):
        train(config, tmp_path / "exp")
    monkeypatch.setattr(torch, "save", real_save)
    assert not [p for p in (tmp_path / "exp").iterdir() if p.name.endswith(".tmp")]  # no half file left
    assert checkpoint.load(tmp_path / "exp" / "last.pt")["progress"]["epoch"] == 1  # epoch 1's, whole
    assert [h.epoch for h in train(config, tmp_path / "exp", resume=True).history] == [1, 2, 3]


@pytest.mark.parametrize("fails", [4, 5, 6, 7])
def test_cut_off_at_any_checkpoint_the_best_epoch_on_record_is_on_disk(tmp_path, tone_manifest, monkeypatch, fails):
    saves, real_save = [], torch.save

    def cut_off(obj, f, *args, **kwargs):  # the fails-th checkpoint write: in epoch 2 or 3
        saves.append(1)
        if len(saves) == fails:
            raise OSError(28, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    config = _config(tone_manifest, ["train.epochs=3", "train.keep_best=1"])
    monkeypatch.setattr(torch, "save", cut_off)
    with pytest.raises(checkpoint.CheckpointError):
        train(config, tmp_path / "exp")
    monkeypatch.setattr(torch, "save", real_save)
    best = checkpoint.load(tmp_path / "exp" / "last.pt")["progress"]["best"]
    assert all((tmp_path / "exp" / e["file"]).exists() for e in best)  # what a resumed run will average
    # best.pt holds the recorded best epoch, or a newer one the resumed run will write again
    assert checkpoint.load(tmp_path / "exp" / "best.pt")["epoch"] >= best[0]["epoch"]


def test_audio_that_goes_bad_during_training_is_skipped_not_fatal(tmp_path, tone_manifest, monkeypatch, caplog):
    from asr import audio

    bad = read_manifest(tone_manifest)[0].audio_filepath
    real_load = audio.load

    def breaks_after_the_statistics(path, *args, **kwargs):  # readable before training, then gone
        callers = (sys._getframe(1).f_code.co_name, sys._getframe(2).f_code.co_name)  # the dataset's reads,
        if str(path) == bad and "__getitem__" in callers:  # directly or through data.load_audio
            raise audio.AudioError(path, "no such file")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(audio, "load", breaks_after_the_statistics)
    result = train(_config(tone_manifest, ["train.epochs=2"]), tmp_path / "exp")
    assert [h.epoch for h in result.history] == [1, 2] and all(math.isfinite(h.train_loss) for h in result.history)
    warnings = [r.getMessage() for r in caplog.records]
    assert f"skipped for this batch: {bad}: no such file" in warnings
    assert f"dev utterance not scored: {bad}: no such file" in warnings
    assert all(torch.isfinite(v).all() for v in checkpoint.load(tmp_path / "exp" / "last.pt")["model"].values())


def test_a_silent_training_file_with_words_is_not_trained_on_and_said_once(tmp_path, tone_manifest, caplog):
    import numpy as np
    import soundfile as sf

    from asr.data import Utterance, write_manifest

    # as the Asterisk prompts' silence/10.flac, "TEN SECONDS OF SILENCE": two bits of noise
    rng = np.random.default_rng(0)
    silent, hushed = tmp_path / "silence.wav", tmp_path / "hushed.wav"
    sf.write(silent, rng.integers(-2, 3, 16000) / 32768, 16000, subtype="PCM_16")
    sf.write(hushed, 0.01 * tone_speech("CAB"), 16000, subtype="PCM_16")  # quiet (-50 dBFS) but speech
    utts = read_manifest(tone_manifest) + [Utterance(str(silent), 1.0, "BAD CAB"), Utterance(str(hushed), 0.56, "CAB")]
    write_manifest(tone_manifest, utts)
    result = train(_config(tone_manifest, ["train.epochs=2", "train.cache_audio=true"]), tmp_path / "exp")
    assert [h.epoch for h in result.history] == [1, 2] and all(math.isfinite(h.train_loss) for h in result.history)
    said = [r.getMessage() for r in caplog.records if "not trained on" in r.getMessage()]
    assert said == [f"not trained on: {silent}: silent (peak -84 dBFS), yet transcribed 'BAD CAB'"]


def test_an_epoch_whose_dev_files_all_went_bad_has_no_dev_figure(tmp_path, tone_manifest, monkeypatch, caplog):
    from asr import audio

    real_load = audio.load

    def dev_gone(path, *args, **kwargs):  # every read by the dev pass fails (the same files train fine)
        callers = {sys._getframe(k).f_code.co_name for k in range(1, 5)}
        if "_evaluate" in callers:
            raise audio.AudioError(path, "no such file")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(audio, "load", dev_gone)
    result = train(_config(tone_manifest, ["train.max_steps=2"]), tmp_path / "exp")
    assert math.isnan(result.history[-1].dev_wer)  # not a perfect 0% WER
    assert "no dev utterance could be scored this epoch" in [r.getMessage() for r in caplog.records]


# -- exact resume, preemption, distributed ---------------------------------------------------------


# Every random draw in play: dropout, VTLP, SpecAugment, speed perturbation.
# Bit-equal reruns need the CPU: CUDA's LSTM and CTC kernels are not deterministic (seen on an H100).
EXACT = ["train.device=cpu", "model.dropout=0.2", "model.layers=2", "augment.freq_masks=1",
         "augment.time_masks=1", "augment.time_width=5", "augment.vtlp=0.1", "augment.speed_perturb=[0.9,1.0,1.1]",
         "train.batch_seconds=4", "train.log_every=1"]


def _config(manifest: Path, overrides=()):
    dev = manifest.parent / "dev.jsonl"
    return load_config(ROOT / "conf" / "tiny.yaml", [f"train.train_manifest={manifest}", f"train.dev_manifest={dev}",
                                                     *overrides])


def _asr(*args, **popen):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "asr", *map(str, args)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **popen)


def _wait_for(predicate, proc, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _same_weights(a: Path, b: Path) -> None:
    """Bit-equal, on purpose: only for two runs of the same computation (same code, machine and
    thread count, same order of operations), where any difference is lost state, not rounding.
    Never for two different code paths: those agree only to a tolerance (see the DDP test)."""
    wa, wb = checkpoint.load(a)["model"], checkpoint.load(b)["model"]
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.mark.slow
def test_killed_and_resumed_run_ends_with_the_same_weights_as_an_unbroken_one(tmp_path, tone_manifest):
    steps = 30  # 5 epochs of 6-7 batches: the kill lands mid-epoch, the resume crosses epochs
    straight = train(_config(tone_manifest, EXACT + [f"train.max_steps={steps}", "train.epochs=10"]), tmp_path / "a")
    assert straight.steps == steps

    out = tmp_path / "b"
    args = ["train", "--config", ROOT / "conf" / "tiny.yaml", "--train", tone_manifest, "--dev",
            tone_manifest.parent / "dev.jsonl", "--resume", out, "--max-steps", steps, "--checkpoint-every", 4,
            "--set", *EXACT, "train.epochs=10"]
    proc = _asr(*args)
    _wait_for(lambda: (out / "last.pt").exists(), proc)
    proc.send_signal(signal.SIGKILL)  # no chance to save anything
    proc.communicate()
    killed_at = checkpoint.load(out / "last.pt")["progress"]["step"]
    assert 4 <= killed_at < steps, "the run finished before it was killed: nothing tested"

    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 9')  # as if the kill had landed mid-line

    proc = _asr(*args)  # the same command again, as a requeued job would run it
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert f"resumed from {out / 'last.pt'}" in stderr and f"trained {steps} steps" in stdout
    _same_weights(tmp_path / "a" / "last.pt", out / "last.pt")
    histories = [[{k: v for k, v in h.items() if k != "seconds"} for h in checkpoint.load(d / "last.pt")["history"]]
                 for d in (out, tmp_path / "a")]
    assert histories[0] == histories[1] and len(histories[0]) >= 3
    # The log holds each step once, although the killed run had logged past its checkpoint.
    steps_logged = [json.loads(line)["step"] for line in (out / "log.jsonl").read_text().splitlines()
                    if "loss" in json.loads(line)]
    assert steps_logged == list(range(1, steps + 1))


@pytest.mark.slow
def test_sigterm_saves_a_loadable_checkpoint_and_exits_cleanly(tmp_path, tone_manifest):
    out = tmp_path / "exp"
    # A loader worker too, and the signal sent to the whole process group, as SLURM does.
    proc = _asr("train", "--config", ROOT / "conf" / "tiny.yaml", "--train", tone_manifest, "--out", out,
                "--set", *EXACT, "train.epochs=200", "train.num_workers=1", start_new_session=True)
    log_file = out / "log.jsonl"
    _wait_for(lambda: log_file.exists() and len(log_file.read_text().splitlines()) >= 3, proc)
    os.killpg(proc.pid, signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr and "stopped by SIGTERM at step" in stderr
    saved = checkpoint.load(out / "last.pt")
    assert saved["progress"]["step"] >= 3
    recognizer = checkpoint.load_recognizer(out / "last.pt")
    assert recognizer.model.lstm.hidden_size == 32

    resumed = train(_config(tone_manifest, EXACT + [f"train.max_steps={saved['progress']['step'] + 2}",
                                                    "train.epochs=200"]), out, resume=True)
    assert resumed.steps == saved["progress"]["step"] + 2 and resumed.stopped_by is None


@pytest.mark.slow
def test_two_process_ddp_makes_the_same_updates_as_one_process_on_the_global_batch(tmp_path, tone_manifest):
    # Two gloo ranks on the CPU whatever GPUs there are: the comparison below is to float rounding.
    common = ["train.device=cpu", "model.layers=2", "train.batch_seconds=100", "train.max_steps=8",
              "train.log_every=2", "train.epochs=5"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "asr", "train",
         "--config", ROOT / "conf" / "tiny.yaml", "--train", tone_manifest, "--dev", tone_manifest.parent / "dev.jsonl",
         "--out", tmp_path / "ddp", "--set", *common, "train.max_batch_size=2"],
        env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("trained 8 steps") == 1  # rank 0 alone reports
    # One process, each batch the union of the two ranks' batches (2 + 2 utterances).
    single = train(_config(tone_manifest, common + ["train.max_batch_size=4"]), tmp_path / "one")
    assert single.steps == 8
    ddp, one = checkpoint.load(tmp_path / "ddp" / "last.pt"), checkpoint.load(tmp_path / "one" / "last.pt")
    # Gradients agree to float rounding (summed in another order); Adam divides by sqrt(v), so a
    # weight whose gradient is ~0 can amplify that rounding to a fraction of the learning rate.
    diff = torch.cat([(ddp["model"][k] - one["model"][k]).abs().flatten() for k in one["model"]])
    assert diff.max() < 5e-5  # lr 3e-3 x 8 steps: 0.2% of the largest possible move
    assert torch.quantile(diff, 0.999) < 2e-6
    assert len(ddp["rng"]) == 2 and ddp["world_size"] == 2
    # Both logged the same global losses; the dev set was scored by both ranks together.
    log_ddp, log_one = ((tmp_path / d / "log.jsonl").read_text().splitlines() for d in ("ddp", "one"))
    assert len(log_ddp) == len(log_one)
    for a, b in zip(map(json.loads, log_ddp), map(json.loads, log_one)):
        for key in ("loss", "train_loss", "dev_loss", "dev_wer"):
            if key in b:
                assert a[key] == pytest.approx(b[key], rel=1e-4), key



@pytest.mark.slow
def test_sigterm_to_torchrun_stops_every_rank_at_the_same_step_with_a_checkpoint(tmp_path, tone_manifest):
    out = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "asr", "train",
         "--config", ROOT / "conf" / "tiny.yaml", "--train", tone_manifest, "--out", out,
         "--set", "train.device=cpu", "train.epochs=500", "train.batch_seconds=4", "train.log_every=2"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log_file = out / "log.jsonl"
    _wait_for(lambda: log_file.exists() and len(log_file.read_text().splitlines()) >= 2, proc)
    proc.send_signal(signal.SIGTERM)  # torchrun passes it on to both ranks
    _, stderr = proc.communicate(timeout=120)
    assert stderr.count("stopped by SIGTERM at step") == 1, stderr  # rank 0 reports
    saved = checkpoint.load(out / "last.pt")
    assert saved["world_size"] == 2 and len(saved["rng"]) == 2
    assert saved["progress"]["step"] >= 2  # (ranks that disagreed would hang in the next collective)
    checkpoint.load_recognizer(out / "last.pt")


def test_more_torchrun_processes_than_gpus_is_one_clear_error_on_every_rank(monkeypatch):
    # As on the H100 machine that found it: torchrun --nproc_per_node=2 on one GPU. Rank 0, which
    # has a GPU, must stop too, or it waits in the rendezvous for a rank that never comes.
    from asr.config import ConfigError
    from asr.train import _start_distributed

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    for rank in (0, 1):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("LOCAL_RANK", str(rank))
        with pytest.raises(ConfigError, match=r"torchrun started 2 processes on this node, which has 1 CUDA GPU\(s\): "
                                              r"one process per GPU \(--nproc_per_node=1\), or train.device=cpu"):
            _start_distributed("cuda")


def test_a_nan_step_is_skipped_and_counted(tmp_path, tone_manifest, monkeypatch):
    from asr.model import BiLSTMCTC

    forward, calls = BiLSTMCTC.forward, []

    def poisoned(self, feats, lengths):
        log_probs, out_lengths = forward(self, feats, lengths)
        calls.append(self.training)
        if self.training and sum(calls) == 3:  # the third training step
            log_probs = log_probs * float("nan")
        return log_probs, out_lengths

    monkeypatch.setattr(BiLSTMCTC, "forward", poisoned)
    result = train(_config(tone_manifest, ["train.batch_seconds=4", "train.log_every=1", "train.max_steps=6"]),
                   tmp_path / "exp")
    assert result.steps == 6 and result.skipped_steps == 1
    lines = [json.loads(line) for line in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    assert [e["skipped"] for e in lines if "loss" in e] == [0, 0, 1, 0, 0, 0]
    saved = checkpoint.load(tmp_path / "exp" / "last.pt")
    assert all(torch.isfinite(v).all() for v in saved["model"].values())
    # The skipped step moved neither the weights nor AdamW's moments or step count.
    assert all(int(s["step"]) == 5 for s in saved["optimizer"]["state"].values())


def test_fp16_grad_scaler_skips_overflowing_steps(tmp_path, tone_manifest, monkeypatch):
    """The fp16 bookkeeping (scale, unscale, skip, back off) without autocast, which needs CUDA."""
    import asr.train as train_module

    monkeypatch.setattr(train_module, "_precision", lambda name, device: (None, "fp16"))
    config = _config(tone_manifest, ["train.batch_seconds=4", "train.log_every=1", "train.max_steps=5"])
    result = train(config, tmp_path / "exp")
    saved = checkpoint.load(tmp_path / "exp" / "last.pt")
    # The scaler starts at 2**16: the first steps overflow in fp32 only if gradients are huge;
    # here they are not, so nothing is skipped and the scale is kept.
    assert saved["scaler"]["scale"] == 2.0**16 and result.skipped_steps == 0
    assert all(torch.isfinite(v).all() for v in saved["model"].values())


def test_reduced_precision_on_a_cpu_is_refused(tmp_path, tone_manifest):
    with pytest.raises(TrainError, match="precision=bf16 needs a CUDA device"):
        train(_config(tone_manifest, ["train.device=cpu", "train.precision=bf16"]), tmp_path / "exp")


def test_keeps_the_best_k_epochs_and_averages_them(tmp_path, tone_manifest):
    from asr.cli import main

    out = tmp_path / "exp"
    result = train(_config(tone_manifest, ["train.batch_seconds=4", "train.epochs=4", "train.keep_best=2",
                                           "model.hidden=24"]), out)
    ranked = sorted(result.history, key=lambda h: (h.dev_wer, h.dev_loss, -h.epoch))[:2]
    assert sorted(p.name for p in out.glob("epoch-*.pt")) == sorted(f"epoch-{h.epoch}.pt" for h in ranked)
    _same_weights(out / "best.pt", out / f"epoch-{ranked[0].epoch}.pt")

    files = [out / f"epoch-{h.epoch}.pt" for h in ranked]
    assert main(["average", *map(str, files), "--out", str(tmp_path / "avg.pt")]) == 0
    a, b = (checkpoint.load(f)["model"] for f in files)
    averaged = checkpoint.load_recognizer(tmp_path / "avg.pt").model.state_dict()
    for k in a:
        torch.testing.assert_close(averaged[k], (a[k] + b[k]) / 2)

    other = train(_config(tone_manifest, ["train.max_steps=1", "model.hidden=16"]), tmp_path / "other")
    assert other.steps == 1
    assert main(["average", str(files[0]), str(tmp_path / "other" / "best.pt"), "--out", str(tmp_path / "x.pt")]) == 1
    assert not (tmp_path / "x.pt").exists()


def test_noise_files_are_checked_before_the_first_step(tmp_path, tone_manifest):
    import numpy as np
    import soundfile as sf

    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(noise / "hum.wav", (0.1 * np.sin(np.arange(16000) / 5)).astype(np.float32), 16000)
    config = _config(tone_manifest, [f"augment.noise_dir={noise}", "augment.noise_prob=1.0", "train.max_steps=2"])
    assert train(config, tmp_path / "ok").steps == 2
    (noise / "broken.flac").write_bytes(b"fLaC and then nothing")
    with pytest.raises(TrainError, match=r"noise: .*broken.flac: not a readable audio file"):
        train(config, tmp_path / "bad")


TONE_LEXICON = "CAB c a b\nCAB(2) k a b\nBAD b a d\nACE a c e\nBED b e d\nDAB d a b\n"


def test_a_phone_model_trains_on_its_lexicons_units_carries_the_lexicon_and_says_words(tmp_path, caplog):
    """Units from a pronunciation lexicon (here the tone corpus's letters, as phones named in
    lower case): transcripts are spelt through it, the model file carries it, and what comes out
    is words of the lexicon, not phones."""
    utts = write_tone_corpus(tmp_path / "audio", MEMORISED + ["ZED CAB"])
    write_manifest(tmp_path / "train.jsonl", utts * 8)  # ZED: a word the lexicon lacks
    write_manifest(tmp_path / "dev.jsonl", utts[:3])
    (tmp_path / "lex.txt").write_text(TONE_LEXICON)
    config = load_config(ROOT / "conf" / "tiny.yaml", [f"train.train_manifest={tmp_path / 'train.jsonl'}",
                         f"train.dev_manifest={tmp_path / 'dev.jsonl'}", f"train.lexicon={tmp_path / 'lex.txt'}",
                         "train.epochs=25", "train.batch_seconds=5", "train.lr=0.01", "model.hidden=48"])
    result = train(config, tmp_path / "exp")
    assert "8 utterances left out, with 1 words the lexicon" in caplog.text and "ZED (8)" in caplog.text
    assert result.history[-1].dev_wer == 0.0  # the phone error rate, and the log says so
    log = [json.loads(line) for line in (tmp_path / "exp" / "log.jsonl").read_text().splitlines()]
    assert {e["units"] for e in log if "dev_wer" in e} == {"phones"}
    best = checkpoint.load(tmp_path / "exp" / "best.pt")
    assert best["vocab"] == ["<blank>", "|", "a", "b", "c", "d", "e", "k"] and best["lexicon"].startswith("CAB c a b\n")
    recognizer = checkpoint.load_recognizer(tmp_path / "exp" / "best.pt")
    texts = [t.text for t in transcribe(recognizer, [u.audio_filepath for u in utts[:3]], timestamps=True)]
    assert texts == MEMORISED
    checkpoint.export(tmp_path / "exp" / "best.pt", tmp_path / "model.pt")
    assert checkpoint.load(tmp_path / "model.pt")["lexicon"] == best["lexicon"]
    # with an LM, the lexicon's words go likeliest first: what a search without it says of homophones
    unigrams = "-1\t<s>\t0\n-1\t</s>\n-0.5\tDAB\t0\n-1\tCAB\t0\n-1.5\tBED\t0\n"
    (tmp_path / "lm.arpa").write_text(f"\\data\\\nngram 1=5\nngram 2=1\n\n\\1-grams:\n{unigrams}\n"
                                      "\\2-grams:\n-0.2\tDAB CAB\n\n\\end\\\n")
    checkpoint.export(tmp_path / "exp" / "best.pt", tmp_path / "model.pt", lm=tmp_path / "lm.arpa")
    assert checkpoint.load(tmp_path / "model.pt")["lexicon"].startswith("DAB d a b\nCAB c a b\nCAB k a b\nBED b e d\n")
    # another lexicon would change the units under a resumed run: refused
    (tmp_path / "lex.txt").write_text(TONE_LEXICON + "ZED z e d\n")
    with pytest.raises(TrainError, match="was trained with another lexicon than"):
        train(config, tmp_path / "exp", resume=True)


def test_fine_tuning_starts_where_the_init_model_was(memorised, tmp_path):
    """--init: the init model's weights, units and statistics; at a vanishing learning rate the
    fine-tuned model's greedy output is the init model's."""
    config = load_config(ROOT / "conf" / "tiny.yaml", [f"train.train_manifest={memorised.dev}",
                                                        f"train.init={memorised.exp / 'best.pt'}", "model.hidden=48",
                                                        "train.lr=1e-12", "train.max_steps=1"])
    train(config, tmp_path / "ft")
    init, tuned = checkpoint.load(memorised.exp / "best.pt"), checkpoint.load(tmp_path / "ft" / "best.pt")
    assert tuned["vocab"] == init["vocab"] and torch.equal(tuned["stats"]["mean"], init["stats"]["mean"])
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    texts = [t.text for t in transcribe(checkpoint.load_recognizer(tmp_path / "ft" / "best.pt"), paths)]
    assert texts == MEMORISED


def test_fine_tuning_a_model_of_another_shape_is_one_error_naming_both(memorised, tmp_path):
    config = load_config(ROOT / "conf" / "tiny.yaml", [f"train.train_manifest={memorised.dev}",
                                                        f"train.init={memorised.exp / 'best.pt'}"])
    with pytest.raises(TrainError, match=r"its model is hidden 48 x layers 1 x stack 2, the config's hidden 32 x "
                                         r"layers 1 x stack 2"):
        train(config, tmp_path / "ft")


def test_words_the_lexicon_lacks_get_pronunciations_and_no_utterance_is_left_out(tmp_path, caplog):
    utts = write_tone_corpus(tmp_path / "audio", ["AM ME", "MAM"])  # MAM: not in the lexicon
    write_manifest(tmp_path / "train.jsonl", utts * 4)
    (tmp_path / "lex.txt").write_text("AM AE M\nME M IY\n")
    config = load_config(ROOT / "conf" / "tiny.yaml", [f"train.train_manifest={tmp_path / 'train.jsonl'}",
                                                        f"train.lexicon={tmp_path / 'lex.txt'}", "train.max_steps=1"])
    with caplog.at_level("INFO"):
        train(config, tmp_path / "exp")
    assert "left out" not in caplog.text and "1 words the lexicon lacks pronounced by G2P" in caplog.text
    assert (tmp_path / "exp" / "added_words.txt").read_text() == "MAM M AE M\n"
    assert "MAM M AE M\n" in checkpoint.load(tmp_path / "exp" / "best.pt")["lexicon"]  # exported with the model
