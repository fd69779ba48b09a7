"""The user's job: audio files in, transcripts out; and evaluation of a model on a manifest."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, NamedTuple

import torch

from asr import audio
from asr.checkpoint import Recognizer
from asr.data import Utterance, read_manifest
from asr.decode import Hypothesis, greedy
from asr.score import Score, score
from asr.text import normalize


class Transcript(NamedTuple):
    path: str
    text: str | None  # None when the file failed
    error: str | None = None  # one line naming the file and the problem


class UtteranceResult(NamedTuple):
    audio_filepath: str
    reference: str
    hypothesis: str


class Evaluation(NamedTuple):
    score: Score  # over the utterances whose audio could be read
    utterances: list[UtteranceResult]
    failed: list[str]  # one line per unreadable audio file: a score with any is not comparable


@torch.no_grad()
def recognize(recognizer: Recognizer, waves: list[torch.Tensor]) -> list[Hypothesis]:
    """Greedy transcripts of a batch of 16 kHz mono waveforms."""
    device = recognizer.features.mean.device
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True).to(device)
    feats, feat_lens = recognizer.features(padded, lengths.to(device))
    log_probs, out_lens = recognizer.model(feats, feat_lens)
    return greedy(log_probs.cpu(), out_lens.cpu(), recognizer.vocab)


def transcribe(recognizer: Recognizer, paths: Iterable[str | os.PathLike], batch_size: int = 8) -> Iterator[Transcript]:
    """Transcripts in input order; a file that cannot be read yields its error and the rest go on."""
    pending: list[tuple[str, torch.Tensor]] = []
    for path in paths:
        try:
            wave = torch.from_numpy(audio.load(path))
        except audio.AudioError as e:
            yield from _flush(recognizer, pending)
            pending = []
            yield Transcript(str(path), None, str(e))
            continue
        pending.append((str(path), wave))
        if len(pending) >= batch_size:
            yield from _flush(recognizer, pending)
            pending = []
    yield from _flush(recognizer, pending)


def _flush(recognizer, pending):
    if not pending:
        return
    hyps = recognize(recognizer, [w for _, w in pending])
    for (path, _), hyp in zip(pending, hyps):
        yield Transcript(path, hyp.text)


def evaluate(recognizer: Recognizer, manifest: str | os.PathLike, batch_size: int = 8) -> Evaluation:
    """WER/CER of the recognizer over the utterances of `manifest`.

    Unreadable audio does not stop the others; it is listed in `failed`, because a score over
    part of a test set is not comparable with anyone else's and the caller must say so.
    """
    utts: list[Utterance] = read_manifest(manifest)
    # Similar lengths together: less padding. transcribe() yields one result per path, in order.
    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    transcripts = dict(zip(order, transcribe(recognizer, [utts[i].audio_filepath for i in order], batch_size)))
    results = [UtteranceResult(u.audio_filepath, normalize(u.text), transcripts[i].text)
               for i, u in enumerate(utts) if transcripts[i].error is None]
    failed = [transcripts[i].error for i in range(len(utts)) if transcripts[i].error is not None]
    scored = score([r.reference for r in results], [r.hypothesis for r in results])
    return Evaluation(scored, results, failed)
