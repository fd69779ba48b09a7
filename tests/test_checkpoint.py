import os
import pickle

import pytest
import torch

from asr import checkpoint
from asr.checkpoint import CheckpointError
from asr.config import Config, to_dict
from asr.data import read_manifest
from asr.model import ModelConfig
from asr.text import Vocabulary, read_lexicon


def payload(config=None, vocab=None):
    config = config or Config(model=ModelConfig(hidden=8, layers=1))
    vocab = vocab or Vocabulary()
    features, model = checkpoint.build(config, vocab)
    return {"model": model.state_dict(), "config": to_dict(config), "vocab": vocab.units,
            "stats": {"mean": torch.full((80,), 1.0), "std": torch.full((80,), 2.0)}}


def test_save_and_load_a_recognizer(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(path, payload())
    rec = checkpoint.load_recognizer(path)
    assert rec.config.model.hidden == 8
    assert torch.equal(rec.features.std, torch.full((80,), 2.0))
    assert not rec.model.training
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    checkpoint.save(path, payload())
    before = path.read_bytes()

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(checkpoint.CheckpointError, match=r"m.pt: not written \(No space left on device\); any earlier m.pt there is intact"):
        checkpoint.save(path, payload())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]


class Exploit:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")  # torch notes the foreign pickle
def test_code_smuggled_into_a_checkpoint_is_not_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": checkpoint.FORMAT, "model": Exploit()}, path)
    with pytest.raises(CheckpointError, match="refused to load"):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()
    with open(path, "wb") as f:  # a plain pickle, not even a torch file
        pickle.dump(Exploit(), f)
    with pytest.raises(CheckpointError):
        checkpoint.load(path)
    assert not (tmp_path / "pwned").exists()


def test_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "m.pt"
    checkpoint.save(path, payload())
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        checkpoint.load(tmp_path / "cut.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an asr checkpoint"):
        checkpoint.load(tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="no such file"):
        checkpoint.load(tmp_path / "nope.pt")


def test_mismatched_config_is_a_clear_error(tmp_path):
    bad = payload()
    bad["config"]["model"]["hidden"] = 16  # weights are for hidden=8
    checkpoint.save(tmp_path / "m.pt", bad)
    with pytest.raises(CheckpointError, match="does not match its config"):
        checkpoint.load_recognizer(tmp_path / "m.pt")
    bad = payload()
    bad["vocab"] = bad["vocab"][:-1]
    checkpoint.save(tmp_path / "v.pt", bad)
    with pytest.raises(CheckpointError, match="does not match"):
        checkpoint.load_recognizer(tmp_path / "v.pt")

    bad = payload(vocab=Vocabulary(pronunciations=read_lexicon("CAT K AE T\n", "lex")))
    bad["lexicon"] = "CAT K AE T\nDOG |\n"
    checkpoint.save(tmp_path / "l.pt", bad)
    with pytest.raises(CheckpointError, match=r"l.pt: .*l.pt \(its lexicon\): line 2: 'DOG' has no pronunciation"):
        checkpoint.load_recognizer(tmp_path / "l.pt")
    bad["lexicon"] = "CAT K AE T Z\n"  # a phone that is not one of its units
    checkpoint.save(tmp_path / "l.pt", bad)
    with pytest.raises(CheckpointError, match="the lexicon's phones Z are not units"):
        checkpoint.load_recognizer(tmp_path / "l.pt")


# -- ONNX export --------------------------------------------------------------------------------------

def test_onnx_export_matches_our_emissions_at_any_batch_and_length(memorised, tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    import numpy as np

    from asr.cli import main
    from asr.transcribe import emissions
    from conftest import tone_speech

    out = tmp_path / "model.onnx"
    assert main(["export", str(memorised.exp / "best.pt"), str(out)]) == 0
    assert "ONNX, opset 17" in capsys.readouterr().out
    ours, theirs = checkpoint.load_recognizer(memorised.exp / "best.pt"), checkpoint.OnnxRecognizer(out, threads=2)
    assert theirs.vocab == ours.vocab
    rng = np.random.default_rng(0)
    # Speech-like lengths, 1.5 to 14 s, batched unequal (padding must not leak) and alone.
    waves = [torch.from_numpy(np.concatenate([tone_speech(t, seed=i) for t in rng.choice(["CAB", "BAD CAB", "ACE BED"], n)]))
             for i, n in enumerate([2, 9, 20, 5])]
    for batch in (waves, waves[2:3], waves[:1]):
        a, a_len = emissions(ours, batch)
        b, b_len = theirs.emissions(batch)
        assert torch.equal(a_len, b_len) and a.shape == b.shape
        valid = torch.arange(a.shape[1])[None] < a_len[:, None]
        assert (a - b).abs()[valid].max() < 1e-4
    assert main(["export", str(memorised.exp / "best.pt"), str(out), "--lm", str(out)]) == 2
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    with pytest.raises(CheckpointError, match="junk.onnx: not an ONNX model exported by asr"):
        checkpoint.OnnxRecognizer(tmp_path / "junk.onnx")


def test_a_shorter_frame_step_reads_the_same_speech_in_more_frames_at_the_same_times(memorised, tmp_path):
    from asr.transcribe import emissions, transcribe
    from conftest import MEMORISED, tone_speech

    best, out = memorised.exp / "best.pt", tmp_path / "m.pt"
    checkpoint.export(best, out, hop_ms=9.5)
    trained, exported = checkpoint.load_recognizer(best), checkpoint.load_recognizer(out)
    assert (trained.config.features.hop_ms, exported.config.features.hop_ms) == (10.0, 9.5)
    assert exported.features.mel.spectrogram.hop_length == exported.features.config.hop_length == 152
    assert checkpoint.load_recognizer(best, hop_ms=9.5).config == exported.config  # the same, without an export
    rebuilt = checkpoint.with_hop(trained, 9.5)  # the same again, from a loaded model
    assert rebuilt.config == exported.config and rebuilt.model is trained.model
    assert checkpoint.with_hop(trained, None) is trained and trained.config.features.hop_ms == 10.0
    wave = torch.from_numpy(tone_speech(MEMORISED[-1]))
    (_, (at_10,)), (_, (at_9_5,)) = emissions(trained, [wave]), emissions(exported, [wave])
    assert abs(at_9_5 - at_10 * 10 / 9.5) <= 1
    (again, (n,)), (loaded, _) = emissions(rebuilt, [wave]), emissions(checkpoint.load_recognizer(best, hop_ms=9.5), [wave])
    assert n == at_9_5 and (again - loaded).abs().max() < 1e-4  # (the export's weights are fp16)
    # Still the words it learnt, and each word's time is in seconds of the audio, not in frames
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    slow, plain = (list(transcribe(r, paths, timestamps=True)) for r in (exported, trained))
    assert [t.text for t in slow] == [t.text for t in plain] == MEMORISED
    frame = 9.5 * trained.config.model.stack / 1000
    for a, b in zip(slow, plain):
        assert len(a.words) == len(b.words) > 0
        assert all(abs(x.start - y.start) <= 2 * frame and abs(x.end - y.end) <= 2 * frame for x, y in zip(a.words, b.words))
    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="hop_ms"):
            checkpoint.load_recognizer(best, hop_ms=bad)
        with pytest.raises(ValueError, match="hop_ms"):
            checkpoint.export(best, tmp_path / "bad.pt", hop_ms=bad)
        with pytest.raises(ValueError, match="hop_ms"):
            checkpoint.with_hop(trained, bad)
    assert not (tmp_path / "bad.pt").exists()
