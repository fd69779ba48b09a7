import json
import math

import pytest

from asr import checkpoint
from asr.data import read_manifest
from asr.train import EpochResult, TrainError, train
from asr.transcribe import transcribe
from conftest import MEMORISED


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
