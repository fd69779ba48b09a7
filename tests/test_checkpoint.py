import os
import pickle

import pytest
import torch

from asr import checkpoint
from asr.checkpoint import CheckpointError
from asr.config import Config, to_dict
from asr.model import ModelConfig
from asr.text import Vocabulary


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
