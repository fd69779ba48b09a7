import torch

from asr.model import BiLSTMCTC, ModelConfig, count_parameters


def make(stack=2, hidden=16, layers=2):
    torch.manual_seed(0)
    return BiLSTMCTC(ModelConfig(hidden=hidden, layers=layers, dropout=0.0, stack=stack), 80, 29).eval()


def test_output_shapes_and_lengths():
    model = make(stack=3)
    log_probs, lengths = model(torch.randn(2, 100, 80), torch.tensor([100, 61]))
    assert log_probs.shape == (2, 34, 29)
    assert lengths.tolist() == [34, 21]
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 34))


def test_padding_changes_nothing():
    """Packed sequences: an utterance in a padded batch gets exactly what it gets alone."""
    model = make(stack=3)  # 41 frames: the last stacked step is part utterance, part padding
    short = torch.randn(1, 41, 80)
    batch = torch.cat([torch.randn(1, 90, 80), torch.nn.functional.pad(short, (0, 0, 0, 49), value=7.0)])
    together, lengths = model(batch, torch.tensor([90, 41]))
    alone, _ = model(short, torch.tensor([41]))
    torch.testing.assert_close(together[1, : lengths[1]], alone[0], atol=1e-5, rtol=1e-5)


def test_size_follows_config():
    small, big = make(hidden=16, layers=1), make(hidden=32, layers=3)
    assert count_parameters(big) > count_parameters(small)
    # Each direction of layer k: 4 gates x H x (input + H) weights, two bias vectors of 4H.
    h, stack, vocab = 1024, 2, 29
    inputs = [80 * stack] + [2 * h] * 4
    expected = sum(2 * (4 * h * (i + h) + 8 * h) for i in inputs) + (2 * h + 1) * vocab
    assert count_parameters(BiLSTMCTC(ModelConfig(hidden=h, layers=5, stack=stack), 80, vocab)) == expected


def test_forget_bias_shifts_only_the_forget_gates():
    torch.manual_seed(0)
    plain = BiLSTMCTC(ModelConfig(hidden=16, layers=2, dropout=0.0), 80, 29)
    torch.manual_seed(0)
    shifted = BiLSTMCTC(ModelConfig(hidden=16, layers=2, dropout=0.0, forget_bias=1.0), 80, 29)
    gates = torch.arange(64) // 16  # input, forget, cell, output: 16 units each
    for (name, a), (_, b) in zip(plain.named_parameters(), shifted.named_parameters()):
        expected = a + (gates == 1).float() if name.startswith("lstm.bias_ih") else a
        torch.testing.assert_close(b, expected, rtol=0, atol=1e-6)
    names = [n for n, _ in plain.named_parameters() if n.startswith("lstm.bias_ih")]
    assert len(names) == 4  # both layers, both directions


def test_cpu_path_equals_packed_path_forward_and_backward():
    """The CPU path (per-utterance reversal over a padded batch) computes the same function,
    with the same weights, as cuDNN-style packed sequences: same outputs, same gradients."""
    model = make(stack=2, hidden=24, layers=3).train()
    model.lstm.dropout = 0.0
    x = torch.randn(3, 57, 80)
    lengths = torch.tensor([57, 30, 11])
    results = []
    for packed in (True, False):
        model.force_packed = packed
        model.zero_grad()
        log_probs, out_lengths = model(x, lengths)
        valid = torch.arange(log_probs.shape[1])[None] < out_lengths[:, None]
        log_probs[valid].sum().backward()
        results.append((log_probs[valid].detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
