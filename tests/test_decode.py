import torch

from asr.decode import greedy
from asr.text import Vocabulary


def frames(vocab, units):
    """One-hot log-probabilities for a frame sequence given as unit strings ('_' is blank)."""
    ids = [vocab.blank if u == "_" else vocab.index[u] for u in units]
    lp = torch.full((len(ids), len(vocab)), -20.0)
    lp[torch.arange(len(ids)), ids] = 0.0
    return lp


def test_greedy_collapses_repeats_and_drops_blanks():
    vocab = Vocabulary()
    seq = list("__HH_E_LL_L__OO||WW_O_RR_LL_D__")
    lp = frames(vocab, seq)[None]
    hyp = greedy(lp, torch.tensor([len(seq)]), vocab)[0]
    assert hyp.text == "HELLO WORLD"
    assert hyp.score == 0.0


def test_greedy_respects_lengths_in_a_batch():
    vocab = Vocabulary()
    a, b = frames(vocab, list("A_B")), frames(vocab, list("C_CZZZ"))
    batch = torch.stack([torch.cat([a, frames(vocab, list("XYZ"))]), b])
    hyps = greedy(batch, torch.tensor([3, 3]), vocab)
    assert [h.text for h in hyps] == ["AB", "CC"]


def test_leading_trailing_and_double_boundaries_vanish():
    vocab = Vocabulary()
    seq = list("|_A_||_|B|")
    assert greedy(frames(vocab, seq)[None], torch.tensor([len(seq)]), vocab)[0].text == "A B"
