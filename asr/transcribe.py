"""The user's job: audio files in, transcripts out; and evaluation of a model on a manifest."""

from __future__ import annotations

import os
from typing import Iterable, Iterator, NamedTuple

import torch

from asr import audio
from asr.checkpoint import Recognizer
from asr.data import Utterance, read_manifest
from asr.decode import BeamDecoder, Hypothesis, Word, align_words, greedy
from asr.score import Score, score
from asr.text import normalize


class Transcript(NamedTuple):
    path: str
    text: str | None  # None when the file failed
    error: str | None = None  # one line naming the file and the problem
    words: list[Word] | None = None  # with timestamps=True: each word's start, end, confidence
    duration: float | None = None  # seconds of audio


class UtteranceResult(NamedTuple):
    audio_filepath: str
    reference: str
    hypothesis: str


class Evaluation(NamedTuple):
    score: Score  # over the utterances whose audio could be read
    utterances: list[UtteranceResult]
    failed: list[str]  # one line per unreadable audio file: a score with any is not comparable


@torch.no_grad()
def emissions(recognizer: Recognizer, waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC log-probabilities (B, T, V) on the CPU and their lengths, for 16 kHz mono waveforms."""
    device = recognizer.features.mean.device
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True).to(device)
    feats, feat_lens = recognizer.features(padded, lengths.to(device))
    log_probs, out_lens = recognizer.model(feats, feat_lens)
    return log_probs.float().cpu(), out_lens.cpu()


def recognize(recognizer: Recognizer, waves: list[torch.Tensor], decoder: BeamDecoder | None = None) -> list[Hypothesis]:
    """Transcripts of a batch of 16 kHz mono waveforms: greedy, or by `decoder`."""
    log_probs, lengths = emissions(recognizer, waves)
    return decoder(log_probs, lengths) if decoder else greedy(log_probs, lengths, recognizer.vocab)


def transcribe(recognizer: Recognizer, paths: Iterable[str | os.PathLike], batch_size: int = 8,
               decoder: BeamDecoder | None = None, timestamps: bool = False) -> Iterator[Transcript]:
    """Transcripts in input order; a file that cannot be read yields its error and the rest go on.
    With `timestamps`, each word's times and confidence, by forced alignment of the transcript."""
    if decoder is not None:  # enough utterances per batch for every decoding process
        batch_size = max(batch_size, 16 * decoder.config.workers)
    pending: list[tuple[str, torch.Tensor]] = []
    for path in paths:
        try:
            wave = torch.from_numpy(audio.load(path))
        except audio.AudioError as e:
            yield from _flush(recognizer, pending, decoder, timestamps)
            pending = []
            yield Transcript(str(path), None, str(e))
            continue
        pending.append((str(path), wave))
        if len(pending) >= batch_size:
            yield from _flush(recognizer, pending, decoder, timestamps)
            pending = []
    yield from _flush(recognizer, pending, decoder, timestamps)


def _flush(recognizer, pending, decoder, timestamps):
    if not pending:
        return
    log_probs, lengths = emissions(recognizer, [w for _, w in pending])
    hyps = decoder(log_probs, lengths) if decoder else greedy(log_probs, lengths, recognizer.vocab)
    config = recognizer.config
    frame_seconds = config.features.hop_ms * config.model.stack / 1000
    for i, ((path, wave), hyp) in enumerate(zip(pending, hyps)):
        duration = len(wave) / config.features.sample_rate
        words = None
        if timestamps:
            words = align_words(log_probs[i], int(lengths[i]), hyp.text, recognizer.vocab, frame_seconds, duration)
        yield Transcript(path, hyp.text, None, words, duration)


def evaluate(recognizer: Recognizer, manifest: str | os.PathLike, batch_size: int = 8,
             decoder: BeamDecoder | None = None) -> Evaluation:
    """WER/CER of the recognizer over the utterances of `manifest`.

    Unreadable audio does not stop the others; it is listed in `failed`, because a score over
    part of a test set is not comparable with anyone else's and the caller must say so.
    """
    utts: list[Utterance] = read_manifest(manifest)
    # Similar lengths together: less padding. transcribe() yields one result per path, in order.
    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    transcripts = dict(zip(order, transcribe(recognizer, [utts[i].audio_filepath for i in order], batch_size, decoder)))
    results = [UtteranceResult(u.audio_filepath, normalize(u.text), transcripts[i].text)
               for i, u in enumerate(utts) if transcripts[i].error is None]
    failed = [transcripts[i].error for i in range(len(utts)) if transcripts[i].error is not None]
    scored = score([r.reference for r in results], [r.hypothesis for r in results])
    return Evaluation(scored, results, failed)


class TunePoint(NamedTuple):
    lm_weight: float
    word_score: float
    score: Score


def tune(recognizer: Recognizer, manifest: str | os.PathLike, decoder: BeamDecoder,
         lm_weights: Iterable[float], word_scores: Iterable[float], batch_size: int = 32) -> list[TunePoint]:
    """WER for each (LM weight, word score) pair on `manifest`, best first. The acoustic model
    runs once; each pair only re-runs the beam search on the same emissions, same loaded LM."""
    utts = read_manifest(manifest)
    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    cached, refs = [], []
    for start in range(0, len(order), batch_size):
        chunk = [utts[i] for i in order[start:start + batch_size]]
        try:
            waves = [torch.from_numpy(audio.load(u.audio_filepath)) for u in chunk]
        except audio.AudioError as e:  # tuning on part of a dev set would tune to the wrong thing
            raise audio.AudioError(e.path, f"{e.problem} (in {manifest}; tuning needs every file)") from None
        cached.append(emissions(recognizer, waves))
        refs += [normalize(u.text) for u in chunk]
    points = []
    for a in lm_weights:
        for b in word_scores:
            d = decoder.with_weights(a, b)
            hyps = [h.text for log_probs, lengths in cached for h in d(log_probs, lengths)]
            points.append(TunePoint(a, b, score(refs, hyps)))
    return sorted(points, key=lambda p: (p.score.wer, p.score.cer))


class Caption(NamedTuple):
    start: float
    end: float
    text: str


def captions(words: list[Word], max_words: int = 7, max_seconds: float = 3.5, pause: float = 0.6) -> list[Caption]:
    """Words grouped into caption blocks: a new block after `max_words` words, when the block
    would last longer than `max_seconds`, or at a pause of `pause` seconds or more."""
    blocks: list[list[Word]] = []
    for w in words:
        block = blocks[-1] if blocks else None
        if (block is None or len(block) >= max_words or w.end - block[0].start > max_seconds
                or w.start - block[-1].end >= pause):
            blocks.append([w])
        else:
            block.append(w)
    return [Caption(b[0].start, b[-1].end, " ".join(w.text for w in b)) for b in blocks]


def to_srt(blocks: list[Caption]) -> str:
    return "".join(f"{i}\n{_clock(c.start, ',')} --> {_clock(c.end, ',')}\n{c.text}\n\n" for i, c in enumerate(blocks, 1))


def to_vtt(blocks: list[Caption]) -> str:
    return "WEBVTT\n\n" + "".join(f"{_clock(c.start, '.')} --> {_clock(c.end, '.')}\n{c.text}\n\n" for c in blocks)


def _clock(seconds: float, comma: str) -> str:
    ms = round(seconds * 1000)
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d}{comma}{ms % 1000:03d}"
