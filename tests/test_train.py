import json
import math

from asr import checkpoint
from asr.data import read_manifest
from asr.train import EpochResult, train
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
    config.train.epochs = 1
    first = train(config, tmp_path / "exp")
    config.train.epochs = 2
    second = train(config, tmp_path / "exp", resume=True)
    assert [h.epoch for h in second.history] == [1, 2]
    assert second.steps > first.steps
    assert second.history[0] == first.history[0]
