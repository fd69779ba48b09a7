import pytest
import torch

from asr import checkpoint
from asr.g2p import G2P, G2PError


def test_the_packaged_g2p_pronounces_words_from_their_spelling():
    g2p = G2P.load()
    said = g2p(["CAT", "SPEECH", "MAM", "Q1", "'"])
    assert said["CAT"] == ["K", "AE", "T"] and said["SPEECH"] == ["S", "P", "IY", "CH"]
    assert said["MAM"] == ["M", "AE", "M"]
    assert "Q1" not in said and "'" not in said  # not letters: no guess


def test_a_damaged_g2p_file_is_one_error_naming_it(tmp_path):
    bad = tmp_path / "g2p.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(G2PError, match="g2p.pt: not a usable G2P model"):
        G2P.load(bad)
    with pytest.raises(G2PError, match="no such G2P model file"):
        G2P.load(tmp_path / "absent.pt")


def test_a_saved_g2p_loads_back_the_same(tmp_path):
    g2p = G2P.load()
    checkpoint.save(tmp_path / "copy.pt", g2p.payload())
    again = G2P.load(tmp_path / "copy.pt")
    words = ["LAYLA", "JAYME", "BIRDBATH"]
    assert again(words) == g2p(words)
    assert all(torch.equal(a, b) for a, b in zip(g2p.model.state_dict().values(), again.model.state_dict().values()))
