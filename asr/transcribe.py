"""The user's job: audio files in, transcripts out; and evaluation of a model on a manifest."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
import time
from typing import Callable, Iterable, Iterator, NamedTuple

import numpy as np
import torch

from asr import audio
from asr.checkpoint import Recognizer, load_recognizer, resolve_device
from asr.data import Utterance, load_audio, read_manifest
from asr.decode import BeamConfig, BeamDecoder, DecodeError, Hypothesis, Word, align_words, greedy
from asr.features import active_floor, frame_energy
from asr.score import Score, alignment, score, total
from asr.text import WORD_BOUNDARY, Pronunciations, Vocabulary, normalize

log = logging.getLogger("asr")

# Long recordings: windows of this many seconds, with this much more audio on each side.
WINDOW_SECONDS = 30.0
CONTEXT_SECONDS = 3.0


class Transcript(NamedTuple):
    path: str
    text: str | None  # None when the file failed
    error: str | None = None  # one line naming the file and the problem
    words: list[Word] | None = None  # with timestamps=True: each word's start, end, confidence
    duration: float | None = None  # seconds of audio
    rtf: float | None = None  # real-time factor: seconds of work (reading to text) per second of audio


class UtteranceResult(NamedTuple):
    audio_filepath: str
    reference: str
    hypothesis: str
    score: Score  # this utterance's own WER, CER and S/D/I


class Evaluation(NamedTuple):
    score: Score  # over the utterances whose audio could be read
    utterances: list[UtteranceResult]
    failed: list[str]  # one line per unreadable audio file: a score with any is not comparable


@torch.no_grad()
def emissions(recognizer: Recognizer, waves: list[torch.Tensor],
              utterance_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """CTC log-probabilities (B, T, V) on the CPU and their lengths, for 16 kHz mono waveforms.
    A waveform that peaks under audio.SILENT_DBFS holds no speech (training leaves such files
    out): all blank, whatever the model would read into its noise."""
    device = recognizer.features.mean.device
    lengths = torch.tensor([len(w) for w in waves])
    padded = torch.nn.utils.rnn.pad_sequence(list(waves), batch_first=True).to(device)
    feats, feat_lens = recognizer.features(padded, lengths.to(device), utterance_mean)
    log_probs, out_lens = recognizer.model(feats, feat_lens)
    log_probs = log_probs.float().cpu()
    silent = torch.tensor([audio.peak_dbfs(w.cpu().numpy()) < audio.SILENT_DBFS for w in waves])
    if silent.any():
        log_probs[silent] = -math.inf
        log_probs[silent, :, recognizer.vocab.blank] = 0.0
    return log_probs, out_lens.cpu()


def recognize(recognizer: Recognizer, waves: list[torch.Tensor], decoder: BeamDecoder | None = None) -> list[Hypothesis]:
    """Transcripts of a batch of 16 kHz mono waveforms: greedy, or by `decoder`."""
    decoder = _words(recognizer, decoder)
    log_probs, lengths = emissions(recognizer, waves)
    return decoder(log_probs, lengths) if decoder else greedy(log_probs, lengths, recognizer.vocab)


# The last phone model's LM-free lexicon search: building one takes ~2 s for a 74k-word lexicon,
# which `recognize` and `transcribe` would otherwise pay on every call. (model's vocabulary, workers, search)
_lexicon_search: tuple[Vocabulary, int, BeamDecoder] | None = None


def _words(recognizer: Recognizer, decoder: BeamDecoder | None, workers: int = 1) -> BeamDecoder | None:
    """`decoder`; for a phone model given none, a search of its lexicon without an LM (its
    greedy output would be phones, not words), built once for the model last asked about."""
    global _lexicon_search
    if decoder is not None or not recognizer.vocab.pronunciations:
        return decoder
    if _lexicon_search is None or _lexicon_search[0] is not recognizer.vocab or _lexicon_search[1] != workers:
        _lexicon_search = (recognizer.vocab, workers, BeamDecoder(recognizer.vocab, BeamConfig(workers=workers)))
    return _lexicon_search[2]


class Samples(NamedTuple):
    """Audio already in memory, for `transcribe` beside file paths: a numpy array or torch tensor
    at `sample_rate` (read by `audio.from_array`), and the name its Transcript carries."""
    name: str
    samples: object
    sample_rate: int


def transcribe(recognizer: Recognizer, inputs: Iterable[str | os.PathLike | Samples | Utterance], batch_size: int | None = None,
               decoder: BeamDecoder | None = None, timestamps: bool = False,
               window_seconds: float = WINDOW_SECONDS) -> Iterator[Transcript]:
    """Transcripts in input order (file paths, `Samples`, manifest `Utterance`s); a file that cannot be read yields
    its error and the rest go on. With `timestamps`, each word's times and confidence, by forced
    alignment of the transcript. Short inputs are batched; one longer than a window (plus its
    context) streams through `transcribe_long` in bounded memory. `batch_size` by default: 8, or
    with beam search 16 per decoding process, so that every process has utterances to decode."""
    decoder = _words(recognizer, decoder)
    if batch_size is None:
        batch_size = 16 * decoder.config.workers if decoder is not None else 8
    long_seconds = window_seconds + 2 * CONTEXT_SECONDS
    pending: list[tuple[str, torch.Tensor]] = []
    started = time.perf_counter()
    for item in inputs:
        if not pending:
            started = time.perf_counter()
        name = _name(item)
        try:
            if isinstance(item, Utterance):  # a manifest's line: its file, or its segment of one
                item = item.audio_filepath if item.offset is None else Samples(name, load_audio(item), audio.SAMPLE_RATE)
            if isinstance(item, Samples):
                item = Samples(name, audio.from_array(item.samples, item.sample_rate, name), audio.SAMPLE_RATE)
            seconds = len(item.samples) / audio.SAMPLE_RATE if isinstance(item, Samples) else audio.duration(item)
            if seconds > long_seconds:
                yield from _flush(recognizer, pending, decoder, timestamps, started)
                pending = []
                yield transcribe_long(recognizer, item, decoder, timestamps, window_seconds)
                continue
            wave = torch.from_numpy(item.samples if isinstance(item, Samples) else audio.load(item))
        except audio.AudioError as e:
            yield from _flush(recognizer, pending, decoder, timestamps, started)
            pending = []
            yield Transcript(name, None, str(e))
            continue
        pending.append((name, wave))
        if len(pending) >= batch_size:
            yield from _flush(recognizer, pending, decoder, timestamps, started)
            pending = []
    yield from _flush(recognizer, pending, decoder, timestamps, started)


def _name(item) -> str:
    """What a Transcript calls its input: the path, the samples' name, or a segment's file and times."""
    if isinstance(item, Samples):
        return item.name
    if isinstance(item, Utterance):
        if item.offset is None:
            return item.audio_filepath
        return f"{item.audio_filepath} [{item.offset:g}-{item.offset + item.duration:g} s]"
    return str(item)


def _flush(recognizer, pending, decoder, timestamps, started):
    if not pending:
        return
    log_probs, lengths = emissions(recognizer, [w for _, w in pending])
    hyps = decoder(log_probs, lengths) if decoder else greedy(log_probs, lengths, recognizer.vocab)
    sample_rate, frame_seconds = recognizer.config.features.sample_rate, _frame_seconds(recognizer)
    spellings = decoder.spellings if decoder else None
    results = []
    for i, ((path, wave), hyp) in enumerate(zip(pending, hyps)):
        try:
            words = align_words(log_probs[i], int(lengths[i]), hyp.text, recognizer.vocab, frame_seconds,
                                len(wave) / sample_rate, spellings) if timestamps else None
            results.append(Transcript(path, hyp.text, None, words, len(wave) / sample_rate))
        except DecodeError as e:  # a word that cannot be timed: this file fails, the batch goes on
            results.append(Transcript(path, None, f"{path}: {e}"))
    # One batch, one clock: each file gets the batch's seconds of work per second of audio.
    rtf = (time.perf_counter() - started) / (sum(len(w) for _, w in pending) / sample_rate)
    for t in results:
        yield t if t.error else t._replace(rtf=rtf)


def _frame_seconds(recognizer: Recognizer) -> float:
    config = recognizer.config
    return config.features.hop_ms * config.model.stack / 1000


def transcribe_long(recognizer: Recognizer, path: str | os.PathLike | Samples, decoder: BeamDecoder | None = None,
                    timestamps: bool = False, window_seconds: float = WINDOW_SECONDS) -> Transcript:
    """One recording of any length in bounded memory: the audio streams through the acoustic
    model in overlapping windows (`long_emissions`), and the stitched log-probabilities are
    decoded in pieces cut inside pauses (`pause_cuts`), so no word is cut, lost or doubled."""
    decoder = _words(recognizer, decoder)
    started = time.perf_counter()
    try:
        if isinstance(path, Samples):
            wave, path = audio.from_array(path.samples, path.sample_rate, path.name), path.name
            step = 10 * audio.SAMPLE_RATE
            blocks = lambda: (wave[i:i + step] for i in range(0, len(wave), step))  # noqa: E731
        else:
            blocks = lambda: audio.stream(path)  # noqa: E731
        log_probs, samples = long_emissions(recognizer, blocks, window_seconds)
    except audio.AudioError as e:
        return Transcript(str(path), None, str(e))
    frame_seconds = _frame_seconds(recognizer)
    duration = samples / recognizer.config.features.sample_rate
    cuts = pause_cuts(log_probs, recognizer.vocab, round(window_seconds / frame_seconds))
    pieces = list(zip(cuts, cuts[1:]))
    texts: list[str] = []
    words: list[Word] = []
    for first in range(0, len(pieces), 16):  # a batch of pieces at a time: bounded padding
        batch = pieces[first:first + 16]
        padded = torch.nn.utils.rnn.pad_sequence([log_probs[a:b] for a, b in batch], batch_first=True)
        lengths = torch.tensor([b - a for a, b in batch])
        hyps = decoder(padded, lengths) if decoder else greedy(padded, lengths, recognizer.vocab)
        for i, ((a, b), hyp) in enumerate(zip(batch, hyps)):
            texts.append(hyp.text)
            if timestamps:
                offset = a * frame_seconds
                try:
                    piece = align_words(padded[i], b - a, hyp.text, recognizer.vocab, frame_seconds, duration - offset,
                                        decoder.spellings if decoder else None)
                except DecodeError as e:
                    return Transcript(str(path), None, f"{path}: {e}")
                words += [w._replace(start=round(w.start + offset, 3), end=round(w.end + offset, 3)) for w in piece]
    text = " ".join(t for t in texts if t)
    return Transcript(str(path), text, None, words if timestamps else None, duration,
                      (time.perf_counter() - started) / duration)


@torch.no_grad()
def long_emissions(recognizer: Recognizer, blocks: Callable[[], Iterable[np.ndarray]],
                   window_seconds: float = WINDOW_SECONDS, context_seconds: float = CONTEXT_SECONDS,
                   ) -> tuple[torch.Tensor, int]:
    """CTC log-probabilities (T, V) of a recording of any length, and its length in samples;
    `blocks()` gives its audio afresh as consecutive 16 kHz blocks (read twice).

    The model runs on windows of `window_seconds` with `context_seconds` more audio on each side,
    and each output frame is kept from the one window where it is in the middle: the BiLSTM has
    seconds of context either way. The per-utterance mean (features.cmn) is the whole recording's,
    over its active frames (features.ACTIVE_DB): a first pass finds the loudest frame, a
    second sums those within ACTIVE_DB of it; so the result is what the whole recording in one
    piece would give."""
    features = recognizer.config.features
    mean = None
    if features.cmn:
        loudest = max(frame_energy(raw).max() for raw in _raw_frames(recognizer, blocks(), window_seconds) if len(raw))
        floor = active_floor(loudest)
        total, frames = torch.zeros(features.n_mels, dtype=torch.float64), 0
        for raw in _raw_frames(recognizer, blocks(), window_seconds):
            raw = raw[frame_energy(raw) >= floor].double()
            total, frames = total + raw.sum(0).cpu(), frames + len(raw)
        mean = (total / frames).float()
    unit = features.hop_length * recognizer.config.model.stack  # samples per output frame
    kept, samples = [], 0

    def counted():
        nonlocal samples
        for block in blocks():
            samples += len(block)
            yield block

    for chunk, first, count in _windows(counted(), window_seconds, round(context_seconds * features.sample_rate),
                                        unit, features.sample_rate):
        log_probs, lengths = emissions(recognizer, [torch.from_numpy(chunk)], mean)
        kept.append(log_probs[0, first:first + count if count else int(lengths[0])])
    return torch.cat(kept), samples


def _raw_frames(recognizer: Recognizer, blocks: Iterable[np.ndarray], window_seconds: float) -> Iterator[torch.Tensor]:
    """The un-normalised log-mel frames of a stream, window by window, exactly as one piece would
    give them: each window has half an FFT of audio more on either side."""
    features = recognizer.config.features
    hop = features.hop_length
    pad = -(-features.n_fft // 2 // hop) * hop
    for chunk, first, count in _windows(blocks, window_seconds, pad, hop, features.sample_rate):
        raw = recognizer.features.raw(torch.from_numpy(chunk)[None].to(recognizer.features.mean.device))[0]
        yield raw[first:first + count if count else None]


def _windows(blocks: Iterable[np.ndarray], window_seconds: float, context: int, unit: int,
             rate: int) -> Iterator[tuple[np.ndarray, int, int]]:
    """Overlapping windows of a stream: (audio, first frame to keep, frames to keep; 0 for all the
    rest). Window and context are whole frames of `unit` samples, so every window is in phase
    with the whole recording's frames."""
    window = max(1, round(window_seconds * rate / unit)) * unit
    context = -(-context // unit) * unit
    buffer, buffer_start, keep, total = np.zeros(0, np.float32), 0, 0, 0
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        total += len(block)
        while total >= keep + window + context:
            start = max(0, keep - context)
            yield buffer[start - buffer_start:keep + window + context - buffer_start], (keep - start) // unit, window // unit
            keep += window
            drop = keep - context - buffer_start  # audio no later window needs
            if drop > 0:
                buffer, buffer_start = buffer[drop:], buffer_start + drop
    start = max(0, keep - context)
    yield buffer[start - buffer_start:], (keep - start) // unit, 0  # up to the frame over the last sample


def pause_cuts(log_probs: torch.Tensor, vocab: Vocabulary, max_frames: int, min_frames: int | None = None) -> list[int]:
    """Frame indices [0, ..., T] that cut a long emission into pieces of at most `max_frames`,
    each cut in the middle of the longest pause (frames whose best unit is the blank or the word
    boundary) in the second half of the piece, so that no word straddles a cut."""
    is_pause = [i in (vocab.blank, vocab.index[WORD_BOUNDARY]) for i in log_probs.argmax(-1).tolist()]
    total = len(is_pause)
    min_frames = max_frames // 2 if min_frames is None else min_frames
    cuts = [0]
    while total - cuts[-1] > max_frames:
        lo, hi = cuts[-1] + min_frames, cuts[-1] + max_frames
        best, best_len, run = hi, 0, 0  # no pause at all: cut at the limit
        for t in range(lo, hi):
            run = run + 1 if is_pause[t] else 0
            if run > best_len:  # the middle of the longest run so far
                best_len, best = run, t - run // 2
        cuts.append(best)
    return cuts + [total]


def evaluate(recognizer: Recognizer, manifest: str | os.PathLike, batch_size: int | None = None,
             decoder: BeamDecoder | None = None) -> Evaluation:
    """WER/CER of the recognizer over the utterances of `manifest`.

    Unreadable audio does not stop the others; it is listed in `failed`, because a score over
    part of a test set is not comparable with anyone else's and the caller must say so.
    """
    utts: list[Utterance] = read_manifest(manifest)
    # Similar lengths together: less padding. transcribe() yields one result per path, in order.
    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    transcripts = dict(zip(order, transcribe(recognizer, [utts[i] for i in order], batch_size, decoder)))
    results = []
    for i, u in enumerate(utts):
        if transcripts[i].error is None:
            ref, hyp = normalize(u.text), transcripts[i].text
            results.append(UtteranceResult(u.audio_filepath, ref, hyp, score([ref], [hyp])))
    failed = [transcripts[i].error for i in range(len(utts)) if transcripts[i].error is not None]
    scored = total([r.score for r in results])  # the per-utterance counts, summed: no second alignment
    return Evaluation(scored, results, failed)


def worst(evaluation: Evaluation, count: int = 20) -> str:
    """The `count` utterances with the most word errors, each reference over its hypothesis."""
    ranked = sorted(evaluation.utterances, key=lambda u: -(u.score.substitutions + u.score.deletions + u.score.insertions))
    blocks = []
    for u in ranked[:count]:
        s = u.score
        head = (f"{u.audio_filepath}  WER {s.wer:.1f}% ({s.substitutions} sub, {s.deletions} del, "
                f"{s.insertions} ins of {s.words} words)")
        blocks.append(f"{head}\n{alignment(u.reference, u.hypothesis)}\n")
    return "\n".join(blocks)


def cpus() -> int:
    """The CPUs this process may run on: one beam-search process each by default (macOS has no
    sched_getaffinity: all of them there)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def read_words(vocab: Vocabulary, lines: Iterable[str], source: str = "words") -> tuple[Pronunciations, list[str]]:
    """A word list's entries, one a line: 'WORD', or 'WORD PH PH ...' in CMUdict's form ('word(2)'
    and stress digits are read too; '#' opens a comment) -> each usable word's spellings for
    `BeamDecoder(words=)`, and one line for each entry that cannot be used, naming `source` and
    the line: the rest go on. A phone model's word with no pronunciation given keeps its
    lexicon's, or gets the G2P's; a letter model spells words as written."""
    from asr.g2p import G2P, G2PError

    words: Pronunciations = {}
    problems: list[str] = []
    guess: list[tuple[str, str]] = []  # (where, word): pronounced by the G2P, all at once
    for n, line in enumerate(lines, 1):
        raw, *phones = line.split("#", 1)[0].split() or [""]
        if not raw:
            continue
        where = f"{source}: line {n}: {raw[:40]!r}"
        word = normalize(re.sub(r"\(\d+\)$", "", raw))
        if not word or " " in word:
            problems.append(f"{where} is not one word the model can spell ({word!r} once normalised)")
        elif not vocab.pronunciations:
            unknown = vocab.foreign(word)
            if unknown:
                problems.append(f"{where} has {unknown[0]!r}, which the model cannot spell")
            elif phones:
                problems.append(f"{where}: a letter model spells words as written, not by a pronunciation")
            else:
                words[word] = [list(word)]
        elif phones:
            phones = [re.sub(r"[0-2]$", "", p.upper()) for p in phones]  # CMUdict's stress marks
            unknown = vocab.foreign(phones)
            if unknown:
                problems.append(f"{where}: {unknown[0][:20]!r} is not one of the model's phones")
            elif phones not in words.setdefault(word, []):
                words[word].append(phones)
        elif word in vocab.pronunciations:
            words.setdefault(word, list(vocab.pronunciations[word]))
        else:
            guess.append((where, word))
    if guess:
        try:
            said = G2P.load()([w for _, w in guess])
        except G2PError as e:
            said, reason = {}, str(e)
        else:
            reason = "the G2P gave it none"
        for where, w in guess:
            if said.get(w) and not vocab.foreign(said[w]):
                words.setdefault(w, [said[w]])
            else:
                problems.append(f"{where}: no pronunciation ({reason}): give one")
    return words, problems


def decoder_for(recognizer: Recognizer, *, lm: str | None = None, lexicon: str | None = None,
                lm_weight: float | None = None, word_score: float | None = None, beam: int | None = None,
                beam_threshold: float | None = None, beam_tokens: int | None = None, greedy: bool = False,
                workers: int = 1, words: Pronunciations | None = None,
                word_boost: float | None = None) -> BeamDecoder | None:
    """The beam decoder these options ask for; else a model's own LM settings (`asr export
    --lm`) unless `greedy`; else None, greedy decoding (a phone model: its lexicon searched, no
    LM, for its words come from there only). `words` (`read_words`) join the lexicon and the LM.
    ValueError for impossible options, and for options that would be ignored."""
    chosen = {"lm_weight": lm_weight, "word_score": word_score, "beam_size": beam, "beam_threshold": beam_threshold,
              "beam_size_token": beam_tokens, "lm": lm, "lexicon": lexicon}
    chosen = {k: v for k, v in chosen.items() if v is not None}
    BeamConfig(workers=workers, **chosen)  # bad numbers refused now, even where no beam search follows
    if greedy and (chosen or words):
        raise ValueError("greedy decoding cannot go with an LM, a lexicon, a beam, words or their settings: "
                         "ask for one or the other")
    if word_boost is not None and not words:
        raise ValueError("a word boost needs words to boost: give them")
    if word_boost is not None and not math.isfinite(word_boost):
        raise ValueError("the word boost must be a finite number")
    boost = {} if word_boost is None else {"word_boost": word_boost}
    stored = None if lm or greedy else recognizer.decoding
    if not beam and not lm and stored is None:
        if chosen:
            raise ValueError("a lexicon, an LM weight, a word score or beam pruning needs beam search: "
                             "give an LM or a beam")
        if words:  # a phone model's lexicon search, with them (DecodeError for a letter model)
            return BeamDecoder(recognizer.vocab, BeamConfig(workers=workers), words, **boost)
        return _words(recognizer, None, workers)
    config = dataclasses.replace(stored or BeamConfig(), workers=workers, **chosen)
    if not config.lm and (lexicon or lm_weight is not None):
        raise ValueError("a lexicon or an LM weight needs an LM: give one")
    return BeamDecoder(recognizer.vocab, config, words, **boost)


class Model:
    """A recogniser, loaded once, to use from Python (the `asr` command is a layer over it):

        import asr
        model = asr.load_model()                        # the packaged default, with its LM
        print(model.transcribe("talk.wav").text)
        for t in model.transcribe(["a.wav", "b.flac"]):  # a list in, a list out, in order
            print(t.path, t.text, [(w.text, w.start, w.confidence) for w in t.words])
        model.transcribe(samples, sample_rate=8000)     # numpy array or torch tensor
        model.evaluate("data/test.jsonl").score.wer
    """

    def __init__(self, recognizer: Recognizer, decoder: BeamDecoder | None = None):
        self.recognizer, self.decoder = recognizer, decoder
        self.skipped_words: list[str] = []  # load_model's words= entries it could not use, one line each

    def transcribe(self, audio_in, sample_rate: int | None = None, *, timestamps: bool = True,
                   batch_size: int | None = None) -> Transcript | list[Transcript]:
        """One input gives a Transcript, a list of inputs a list of them in the same order. An
        input is a file path or samples (a numpy array or torch tensor: 1-D, or 2-D with the
        channels on either axis) at `sample_rate`. With `timestamps` (the default), each word's
        start, end and confidence. A single input that cannot be read raises `AudioError`; in a
        list, its Transcript carries the error (`.text` None) and the rest go on."""
        single = isinstance(audio_in, (str, os.PathLike)) or hasattr(audio_in, "shape")
        items = [audio_in] if single else list(audio_in)
        inputs = []
        for i, item in enumerate(items):
            if isinstance(item, (str, os.PathLike)):
                inputs.append(item)
            elif sample_rate is None:
                raise ValueError("transcribing samples needs sample_rate= (the samples' rate in Hz)")
            else:
                inputs.append(Samples("array" if single else f"array[{i}]", item, sample_rate))
        results = list(self.stream(inputs, timestamps=timestamps, batch_size=batch_size))
        if single:
            if results[0].error:
                name, _, problem = results[0].error.partition(": ")
                raise audio.AudioError(name, problem)
            return results[0]
        return results

    def stream(self, inputs: Iterable[str | os.PathLike | Samples], *, timestamps: bool = True,
               batch_size: int | None = None) -> Iterator[Transcript]:
        """Transcripts as they are ready, in input order: for many files (`asr transcribe` uses it)."""
        return transcribe(self.recognizer, inputs, batch_size, self.decoder, timestamps)

    def evaluate(self, manifest: str | os.PathLike, batch_size: int | None = None) -> Evaluation:
        """WER and CER over a manifest (JSON lines: audio_filepath, duration, text)."""
        return evaluate(self.recognizer, manifest, batch_size, self.decoder)


def load_model(model: str | os.PathLike | None = None, device: str = "auto", *, lm: str | None = None,
               lexicon: str | None = None, lm_weight: float | None = None, word_score: float | None = None,
               beam: int | None = None, beam_threshold: float | None = None, beam_tokens: int | None = None,
               greedy: bool = False, decode_workers: int | None = None, hop_ms: float | None = None,
               words: Iterable[str] | str | os.PathLike | None = None, word_boost: float | None = None) -> Model:
    """A Model from a model file (`asr export` or a training checkpoint); None: the default model
    inside the package. Decoding is the model's own (an exported LM) unless the options say
    otherwise: `lm=` an n-gram LM (ARPA, .gz too) with `lm_weight`, `word_score`, `beam`;
    `beam` alone, a beam search without LM; `greedy=True`, no beam search. `hop_ms`: the
    front-end's frame step instead of the model's own. `words`: your words ('WORD' or 'WORD PH
    PH ...'), a list or a file of one a line, made decodable (`read_words`; each one that cannot
    be is a warning, in `Model.skipped_words` too), those the LM lacks boosted by `word_boost`."""
    recognizer = load_recognizer(model, resolve_device(device), hop_ms)
    workers = cpus() if decode_workers is None else decode_workers
    added, skipped = None, []
    if words is not None:
        if isinstance(words, (str, os.PathLike)):
            try:
                with open(words, encoding="utf-8") as f:
                    added, skipped = read_words(recognizer.vocab, f, str(words))
            except (OSError, UnicodeDecodeError) as e:
                raise DecodeError(f"{words}: not a readable word list ({e})") from None
        else:
            added, skipped = read_words(recognizer.vocab, words)
        for problem in skipped:
            log.warning("%s", problem)
        if not added:
            raise DecodeError(f"{words if isinstance(words, (str, os.PathLike)) else 'words'}: none of its words "
                              "can be used (see above)" if skipped else "words: the list is empty")
    decoder = decoder_for(recognizer, lm=lm, lexicon=lexicon, lm_weight=lm_weight, word_score=word_score,
                          beam=beam, beam_threshold=beam_threshold, beam_tokens=beam_tokens, greedy=greedy,
                          workers=workers, words=added, word_boost=word_boost)
    result = Model(recognizer, decoder)
    result.skipped_words = skipped
    return result


class TunePoint(NamedTuple):
    lm_weight: float
    word_score: float
    score: Score
    hop_ms: float  # the front-end's frame step the emissions were made with


def manifest_emissions(recognizer: Recognizer, manifest: str | os.PathLike,
                       batch_size: int = 32) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Every utterance's emissions, batched by length, and the normalised references in the same
    order: for searches tried again and again on one dev set. AudioError if any file is unreadable."""
    utts = read_manifest(manifest)
    order = sorted(range(len(utts)), key=lambda i: utts[i].duration)
    cached, refs = [], []
    for start in range(0, len(order), batch_size):
        chunk = [utts[i] for i in order[start:start + batch_size]]
        cached.append(emissions(recognizer, [torch.from_numpy(load_audio(u)) for u in chunk]))
        refs += [normalize(u.text) for u in chunk]
    return cached, refs


def tune(recognizer: Recognizer, manifest: str | os.PathLike, decoder: BeamDecoder,
         lm_weights: Iterable[float], word_scores: Iterable[float], batch_size: int = 32) -> list[TunePoint]:
    """WER for each (LM weight, word score) pair on `manifest`, best first. The acoustic model
    runs once; each pair only re-runs the beam search on the same emissions, same loaded LM."""
    try:
        cached, refs = manifest_emissions(recognizer, manifest, batch_size)
    except audio.AudioError as e:  # tuning on part of a dev set would tune to the wrong thing
        raise audio.AudioError(e.path, f"{e.problem} (in {manifest}; tuning needs every file)") from None
    points = []
    for a in lm_weights:
        for b in word_scores:
            d = decoder.with_weights(a, b)
            hyps = [h.text for log_probs, lengths in cached for h in d(log_probs, lengths)]
            points.append(TunePoint(a, b, score(refs, hyps), recognizer.config.features.hop_ms))
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
