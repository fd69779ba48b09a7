"""The acoustic model: frame stacking -> deep bidirectional LSTM -> linear CTC output layer."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


@dataclass
class ModelConfig:
    hidden: int = 320  # per direction
    layers: int = 4
    dropout: float = 0.1
    stack: int = 2  # frames stacked into one LSTM step: x2 fewer steps, x2 wider input
    # Added to every forget gate's initial bias (PyTorch's init draws it around 0); 1.0 is the
    # usual remedy for an LSTM slow to start learning (Gers et al. 2000; Jozefowicz et al. 2015).
    forget_bias: float = 0.0

    def __post_init__(self):
        if self.hidden < 1 or self.layers < 1 or self.stack < 1:
            raise ValueError("hidden, layers and stack must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("dropout must be in [0, 1)")


class BiLSTMCTC(nn.Module):
    def __init__(self, config: ModelConfig, n_inputs: int, n_outputs: int):
        super().__init__()
        self.config = config
        self.lstm = nn.LSTM(
            input_size=n_inputs * config.stack,
            hidden_size=config.hidden,
            num_layers=config.layers,
            dropout=config.dropout if config.layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        if config.forget_bias:
            with torch.no_grad():  # gates are stacked (input, forget, cell, output) in each bias
                for name, bias in self.lstm.named_parameters():
                    if name.startswith("bias_ih"):
                        bias[config.hidden:2 * config.hidden] += config.forget_bias
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(2 * config.hidden, n_outputs)
        self.force_packed = False  # tests compare the two LSTM paths on a CPU

    def _lstm_packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """cuDNN's fused bidirectional LSTM over packed sequences: it never runs over padding.

        `lengths` should be on the CPU (packing needs them there; moving them from the GPU
        would wait for it), and longest first as `collate` makes them: packing an unsorted
        batch copies a permutation to the GPU and waits for that too."""
        lengths = lengths.cpu()
        is_sorted = bool((lengths[:-1] >= lengths[1:]).all())
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=is_sorted)
        y, _ = self.lstm(packed)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return y

    def _lstm_reversed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The same function as `_lstm_packed`, with the same weights, for the CPU.

        On a CPU, backward through packed sequences of unequal lengths is ~5x slower than through
        a padded batch. So each layer runs as two one-directional passes over the padded batch,
        the backward one over every utterance reversed within its own length: padding then
        always comes after an utterance's last frame and cannot reach any of its outputs.
        """
        b, t, _ = x.shape
        steps = torch.arange(t, device=x.device).expand(b, t)
        reverse = lengths.to(x.device, non_blocking=True)[:, None] - 1 - steps
        index = torch.where(reverse >= 0, reverse, steps)  # its own inverse

        def flip(z):
            return z.gather(1, index[..., None].expand_as(z))

        lstm = self.lstm
        for layer in range(lstm.num_layers):
            weights = [getattr(lstm, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            weights_rev = [getattr(lstm, f"{name}_l{layer}_reverse") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
            h0 = x.new_zeros(1, b, lstm.hidden_size)
            fwd = torch.lstm(x, (h0, h0), weights, True, 1, 0.0, self.training, False, True)[0]
            bwd = flip(torch.lstm(flip(x), (h0, h0), weights_rev, True, 1, 0.0, self.training, False, True)[0])
            x = torch.cat([fwd, bwd], dim=-1)
            if layer < lstm.num_layers - 1:  # nn.LSTM's dropout: between layers, not after the last
                x = nn.functional.dropout(x, lstm.dropout, self.training)
        return x

    def output_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        return torch.div(lengths + self.config.stack - 1, self.config.stack, rounding_mode="floor")

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) features and their lengths -> (B, T', V) CTC log-probabilities and T' lengths."""
        x, out_lengths = self.stack_frames(feats, lengths)
        return self.from_stacked(x, out_lengths), out_lengths

    def stack_frames(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) -> (B, T', F * stack): `stack` frames folded into each LSTM step; and T'."""
        b, t, f = feats.shape
        s = self.config.stack
        # Zero the padding: the last stacked step of an utterance may hold padded frames, and
        # they must be the same whether the utterance is alone or in a batch.
        padding = torch.arange(t, device=feats.device)[None, :] >= lengths.to(feats.device, non_blocking=True)[:, None]
        feats = feats.masked_fill(padding[..., None], 0.0)
        if t % s:  # pad time to a multiple of the stack, then fold s frames into one step
            feats = nn.functional.pad(feats, (0, 0, 0, s - t % s))
        return feats.reshape(b, -1, f * s), self.output_lengths(lengths)

    def from_stacked(self, x: torch.Tensor, out_lengths: torch.Tensor) -> torch.Tensor:
        """Stacked features -> log-probabilities: the part an ONNX export holds."""
        y = self._lstm_packed(x, out_lengths) if x.is_cuda or self.force_packed else self._lstm_reversed(x, out_lengths)
        logits = self.output(self.dropout(y))
        return logits.log_softmax(dim=-1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
