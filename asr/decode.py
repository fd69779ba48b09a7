"""From CTC log-probabilities to text: greedy, or beam search with an n-gram language model."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import math
import multiprocessing
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from asr.audio import quiet_stderr
from asr.lm import BOS, EOS, UNK, is_gzip, write_lexicon
from asr.text import WORD_BOUNDARY, Pronunciations, Vocabulary


_TRANSCRIPT_WORD = re.compile(r"[A-Z']+")  # what normalisation leaves of a word

# A user's word (`words=`) that the LM lacks joins it as a unigram this many log10 units above the
# LM's median word; tools/bench_words.py measured it (docs/words.md).
WORD_BOOST = 1.0


class Hypothesis(NamedTuple):
    text: str
    tokens: list[int]  # unit ids after collapsing repeats and removing blanks
    score: float  # sum of the chosen frames' log-probabilities


def greedy(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary) -> list[Hypothesis]:
    """Best unit per frame, repeats collapsed, blanks removed. log_probs: (B, T, V)."""
    best, ids = log_probs.max(dim=-1)
    hyps = []
    for b, n in enumerate(lengths.tolist()):
        tokens = collapse(ids[b, :n], vocab.blank)
        hyps.append(Hypothesis(vocab.decode(tokens), tokens, float(best[b, :n].sum())))
    return hyps


def collapse(frames: torch.Tensor, blank: int) -> list[int]:
    """A path of one unit id per frame (T,), as CTC reads it: repeats collapsed, blanks removed."""
    keep = torch.ones_like(frames, dtype=torch.bool)
    keep[1:] = frames[1:] != frames[:-1]
    return [t for t in frames[keep].tolist() if t != blank]


@dataclass
class BeamConfig:
    """Beam search with an optional n-gram LM (flashlight's CTC decoder, through torchaudio).

    A word-level LM (ARPA, .arpa.gz, or KenLM binary) decodes lexicon-constrained: only words
    of the lexicon come out (by default, every word of the ARPA file that our units can spell;
    for a phone model, every word of it that the model's own lexicon pronounces). A character-level
    LM (`asr lm build --units chars`) decodes lexicon-free: any spelling. A phone model with no LM
    searches its whole lexicon, every word alike.
    """

    beam_size: int = 50
    beam_threshold: float = 25.0  # prune hypotheses this far (log) below the best
    beam_size_token: int = 0  # per frame, extend hypotheses by the N likeliest units only (0: all):
    # a wide beam at the cost of a narrow one (recipes/default/ablation.md)
    lm: str = ""
    lexicon: str = ""  # word -> spelling file; default: from the ARPA file's words
    lm_weight: float = 1.0
    word_score: float = 0.0  # added per word (lexicon mode) or per '|' (lexicon-free)
    sil_score: float = 0.0
    nbest: int = 1
    workers: int = 1  # processes that decode a batch's utterances side by side

    def __post_init__(self):
        if self.beam_size < 1 or self.nbest < 1 or self.workers < 1 or self.beam_threshold <= 0:
            raise ValueError("beam_size, nbest and workers must be >= 1 and beam_threshold positive")
        if self.beam_size_token < 0:
            raise ValueError("beam_size_token must be 0 (every unit) or more")
        if not all(math.isfinite(x) for x in (self.beam_threshold, self.lm_weight, self.word_score, self.sil_score)):
            raise ValueError("beam_threshold, lm_weight, word_score and sil_score must be finite numbers")

    def describe(self) -> str:
        """One line, for a figure's record: 'beam 1000 (8 units a frame, threshold 12) + LM NAME (--lm-weight ...)'."""
        units = f"{self.beam_size_token} units a frame" if self.beam_size_token else "every unit"
        search = f"beam {self.beam_size} ({units}, threshold {self.beam_threshold:g})"
        if not self.lm:
            return f"{search}, no LM"
        return f"{search} + LM {Path(self.lm).name} (--lm-weight {self.lm_weight:g} --word-score {self.word_score:g})"


class DecodeError(Exception):
    """An LM or lexicon the decoder cannot use; the message names the file."""


class BeamDecoder:
    """Decodes (B, T, V) CTC log-probabilities into `Hypothesis` lists, with the LM loaded once;
    `with_weights` and `with_config` make one with other LM weights or beam settings on the same
    loaded LM (for tuning).

    `words` (word -> its spellings: phones for a phone model, its letters for a letter model)
    join the lexicon, ahead of its own words of the same sound; those the LM lacks join it as
    unigrams `word_boost` log10 units above its median word, in the copy the decoder reads (the
    LM file is not rebuilt)."""

    def __init__(self, vocab: Vocabulary, config: BeamConfig, words: Pronunciations | None = None,
                 word_boost: float = WORD_BOOST):
        from flashlight.lib.text.decoder.kenlm import KenLM
        from flashlight.lib.text.dictionary import Dictionary, create_word_dict

        self.vocab, self.config = vocab, config
        self.added = dict(words or {})
        if self.added:
            if config.lexicon:
                raise DecodeError(f"{config.lexicon}: words cannot be added to a lexicon file: add them to it")
            if not vocab.pronunciations and not config.lm:
                raise DecodeError("a letter model with no LM spells any word already: words need an LM")
            unusable = next((w for w, ps in self.added.items() for p in ps if not p or vocab.foreign(p)), None)
            if unusable:
                raise DecodeError(f"{unusable}: not spelt with the model's units")
            if vocab.pronunciations:  # the user's spellings first, then the lexicon's own
                merged = {w: list(ps) for w, ps in vocab.pronunciations.items()}
                for w, ps in self.added.items():
                    merged[w] = ps + [p for p in merged.get(w, []) if p not in ps]
                vocab = copy.copy(vocab)
                vocab.pronunciations = merged
        self._tmp = tempfile.TemporaryDirectory(prefix="asr-decode-")
        self.lexicon = None
        self.lm = None
        self.words = None  # the word list file behind the LM's word ids, shared with ctc_decoder
        # lexicon words not spelt as written, for word times (the user's, for a phone model)
        self.spellings: dict[str, list[str]] = {w: ps[0] for w, ps in self.added.items()} if vocab.pronunciations else {}
        if not config.lm and vocab.pronunciations:
            # A phone model's words come out of its lexicon only. With no LM to tell homophones
            # apart (K, KAY, CAY), each sound says the lexicon's first word (tools/lexicon.py and
            # `asr export --lm` put the likeliest first); the letter names it trained on ('A.') are
            # no transcript's words.
            self.lexicon = str(Path(self._tmp.name) / "lexicon.txt")
            words = [w for w in vocab.pronunciations if _TRANSCRIPT_WORD.fullmatch(w)]
            words = [*self.added, *(w for w in words if w not in self.added)]
            _write_pronunciations(vocab.pronunciations, words, self.lexicon, per_sound=1)
        if config.lm:
            unigrams = new = None
            if self.added and Path(config.lm).is_file():  # (a missing file: _plain_lm says so)
                # read from the file as given (gzip too), so that it is unpacked once, words and all
                unigrams = arpa_unigrams(config.lm)
                if all(w in vocab.index for w in unigrams):
                    raise DecodeError(f"{config.lm}: a character LM spells any word already: words need a word LM")
                median = sorted(unigrams.values())[len(unigrams) // 2]
                new = {w: min(0.0, median + word_boost) for w in self.added if w not in unigrams}  # p <= 1
                unigrams = {**new, **unigrams}
            lm_path = _plain_lm(config.lm, Path(self._tmp.name), new)
            if config.lexicon:
                self.lexicon = config.lexicon
            elif vocab.pronunciations:  # the LM's words that the model's lexicon pronounces
                unigrams = unigrams or arpa_unigrams(lm_path)
                spoken = sorted((w for w in unigrams if w in vocab.pronunciations),
                                key=lambda w: (w not in self.added, -unigrams[w]))
                if not spoken:
                    raise DecodeError(f"{config.lm}: the model's lexicon pronounces no word of the LM "
                                      f"(its words look like {', '.join(list(unigrams)[:3])})")
                self.lexicon = str(Path(self._tmp.name) / "lexicon.txt")
                _write_pronunciations(vocab.pronunciations, spoken, self.lexicon)
                self.words = str(Path(self._tmp.name) / "words.txt")
                _write_words(spoken, self.words)
            else:
                words = list(unigrams or arpa_unigrams(lm_path))
                if all(w in vocab.index for w in words):  # letters: a character LM
                    self.lexicon = None
                else:
                    # only words the units can spell: the others could never be output anyway
                    # (vocab.foreign, as one set test a word: this runs at every start-up)
                    spellable = set(vocab.units) - {vocab.units[vocab.blank], WORD_BOUNDARY}
                    spelt = sorted({w for w in words if spellable.issuperset(w)})
                    if not spelt:
                        letters = " ".join(u for u in vocab.units[vocab.blank + 1:] if u != WORD_BOUNDARY)
                        raise DecodeError(f"{config.lm}: no word of the LM can be spelled with the model's units "
                                          f"(its words look like {', '.join(words[:3])}; the units are {letters})")
                    self.lexicon = str(Path(self._tmp.name) / "lexicon.txt")
                    write_lexicon(spelt, self.lexicon)
                    self.words = str(Path(self._tmp.name) / "words.txt")
                    _write_words(spelt, self.words)  # each spelt as written: no spellings to keep
            if self.lexicon:
                # One word dictionary, read from a plain word list, serves KenLM and ctc_decoder
                # (given as its lm_dict): built from the lexicon it costs ~0.4 s per build for
                # 74k words, and ctc_decoder would build a second one.
                if not self.words:  # the user's lexicon: read, checked, its spellings kept
                    self.words = str(Path(self._tmp.name) / "words.txt")
                    given, self.lexicon = self.lexicon, str(Path(self._tmp.name) / "lexicon.txt")
                    self.spellings = _read_lexicon(given, vocab, self.words, self.lexicon)
                word_dict = Dictionary(self.words)
                word_dict.set_default_index(word_dict.get_index(UNK))
            else:
                units = {u: [[u]] for u in vocab.units}
                units[UNK] = [[UNK]]
                word_dict = create_word_dict(units)
            try:
                with quiet_stderr():  # KenLM draws a progress bar there while it reads
                    self.lm = KenLM(str(lm_path), word_dict)
            except Exception as e:  # KenLM's own parse errors
                too_long = re.search(r"counts\.size\(\) > (\d+)", str(e))
                if too_long:  # KENLM_MAX_ORDER, fixed when flashlight-text was built
                    raise DecodeError(f"{config.lm}: order above {too_long[1]}, the most the decoder's KenLM "
                                      f"loads: build it with --order {too_long[1]} or less") from None
                # KenLM's message opens with a C++ signature; the reason follows "threw ...Exception."
                reason = re.split(r"threw \w+\.", str(e), maxsplit=1)[-1]
                raise DecodeError(f"{config.lm}: not a usable n-gram LM ({' '.join(reason.split())[:200]})") from None
        self._decoder = self._build(config)
        self._wide: BeamDecoder | None = None  # the same search, 4 times as wide (nbest)
        self.searched_again = 0  # utterances that needed it, so far

    def _build(self, config: BeamConfig):
        from torchaudio.models.decoder import ctc_decoder

        return ctc_decoder(
            lexicon=self.lexicon, tokens=self.vocab.units, lm=self.lm, lm_dict=self.words, nbest=config.nbest,
            beam_size=config.beam_size, beam_size_token=config.beam_size_token or None,
            beam_threshold=config.beam_threshold,
            lm_weight=config.lm_weight if self.lm else 0.0, word_score=config.word_score,
            sil_score=config.sil_score, blank_token=self.vocab.units[self.vocab.blank], sil_token=WORD_BOUNDARY,
            unk_word=UNK,
        )

    def with_weights(self, lm_weight: float, word_score: float) -> "BeamDecoder":
        return self.with_config(dataclasses.replace(self.config, lm_weight=lm_weight, word_score=word_score))

    def with_config(self, config: BeamConfig) -> "BeamDecoder":
        """Other search settings (weights, beam) on the same loaded LM and lexicon."""
        if (config.lm, config.lexicon) != (self.config.lm, self.config.lexicon):
            raise ValueError("with_config changes the search, not the LM or lexicon: make a new BeamDecoder")
        other = copy.copy(self)
        other.config = config
        other._decoder = self._build(config)
        other._wide, other.searched_again = None, 0
        return other

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        return [n[0] for n in self.nbest(log_probs, lengths)]

    def nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        emissions = log_probs.detach().float().cpu().contiguous()
        lengths = lengths.cpu()
        if self.lexicon:
            emissions, lengths = _end_with_a_boundary(emissions, lengths, self.vocab)
        workers = min(self.config.workers, len(emissions))
        if workers < 2:
            results = self._nbest(emissions, lengths)
        else:
            # The search holds the GIL, so threads would take turns: forked processes instead. They
            # inherit the loaded LM and the emissions (copy-on-write), and send back only text.
            global _FORKED
            _FORKED = (self, emissions, lengths)
            try:
                with multiprocessing.get_context("fork").Pool(workers) as pool:
                    results = pool.map(_nbest_of, range(len(emissions)),
                                       chunksize=max(1, len(emissions) // (4 * workers)))
            finally:
                _FORKED = None
        if self.lexicon:
            # A beam can fill with one wrong word's prefix (told apart only by the words before
            # it) and lose every hypothesis that could end a word: its best then pays the final
            # frame's off-path score, and the rest of the utterance is lost. Such an utterance is
            # searched again with a beam four times as wide.
            for i, hyps in enumerate(results):
                if hyps and hyps[0].score < _STUCK:
                    self.searched_again += 1
                    results[i] = self._wider()._nbest(emissions[i:i + 1], lengths[i:i + 1])[0]
        return results

    def _wider(self) -> "BeamDecoder":
        if self._wide is None:  # built once, when first needed: a search of 74k words takes 1-2 s to build
            self._wide = self.with_config(dataclasses.replace(self.config, beam_size=4 * self.config.beam_size))
        return self._wide

    def _nbest(self, emissions: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        results = self._decoder(emissions, lengths)
        return [[Hypothesis(" ".join(h.words) if self.lexicon else self.vocab.decode(h.tokens.tolist()),
                            h.tokens.tolist(), float(h.score)) for h in hyps] or [Hypothesis("", [], float("-inf"))]
                for hyps in results]


# A log-probability no path takes while another is open: the padding, and the units other than '|'
# in the frame _end_with_a_boundary adds. A best hypothesis scoring under _STUCK went through one.
_OFF_PATH = -1e6
_STUCK = _OFF_PATH / 2

_FORKED: tuple | None = None  # (decoder, emissions, lengths) for the pool's forked workers


def _end_with_a_boundary(emissions: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary):
    """One more frame after each utterance's last, where the word boundary is certain. The
    lexicon spells every word with a closing '|', but the model never emits one after the last
    word (no target ends with one): without this frame the search can finish the last word only
    where a stray frame offers a boundary, and drops it otherwise."""
    batch, frames, units = emissions.shape
    padded = torch.full((batch, frames + 1, units), _OFF_PATH)
    padded[:, :frames] = emissions
    boundary = torch.full((units,), _OFF_PATH)
    boundary[vocab.index[WORD_BOUNDARY]] = 0.0
    padded[torch.arange(batch), lengths] = boundary
    return padded, lengths + 1


def _read_lexicon(lexicon: str, vocab: Vocabulary, out: str, search_lexicon: str) -> dict[str, list[str]]:
    """Writes the lexicon's words, each once, in order, and <unk> last, to `out`: a word list
    flashlight reads; and its spellings to `search_lexicon`, each ending with '|' as the model
    ends a word (a CMUdict-style lexicon, the form a phone model trains with, has none) and at
    most 6 words of one spelling, the first in the file (flashlight's trie holds no more). Returns the first spelling (without '|') of each word that is not spelt as it is
    written ('OK' as O K A Y), for aligning the word on its units."""
    spellings = {}
    pronunciations: dict[str, list[list[str]]] = {}  # each word's spellings, words in file order
    try:
        with open(lexicon, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.split()
                if not parts or parts[0] == UNK:
                    continue
                units = [u for u in parts[1:] if u != WORD_BOUNDARY]
                if not units:
                    raise DecodeError(f"{lexicon}: line {n}: a word with no spelling ({parts[0][:40]!r})")
                unknown = vocab.foreign(units)
                if unknown:
                    raise DecodeError(f"{lexicon}: line {n}: {parts[0][:40]!r} is spelled with {unknown[0][:20]!r}, "
                                      "not one of the model's units")
                if parts[0] not in pronunciations and units != list(parts[0]):
                    spellings[parts[0]] = units
                known = pronunciations.setdefault(parts[0], [])
                if units not in known:  # a line repeated is one spelling, not two of the 6 a sound holds
                    known.append(units)
    except (OSError, UnicodeDecodeError) as e:
        raise DecodeError(f"{lexicon}: not a usable lexicon ({e})") from None
    if not pronunciations:
        raise DecodeError(f"{lexicon}: not a usable lexicon (no words)")
    _write_words(pronunciations, out)
    _write_pronunciations(pronunciations, list(pronunciations), search_lexicon)
    return spellings


def _float(x: str) -> float:
    try:
        return float(x)
    except ValueError:
        return -99.0  # ARPA's way to write "never", in files that spell it oddly


def _write_pronunciations(pronunciations: dict[str, list[list[str]]], words: list[str], out: str,
                          per_sound: int = 6) -> None:
    """The words' pronunciations as flashlight's lexicon, `per_sound` words of one pronunciation
    at most, the first in `words` (likeliest first). Its trie holds 6 (it drops the rest, saying
    "Trie label number reached limit": AN4's K went among KAY, QUAY, CAY...)."""
    homophones: dict[tuple, int] = {}
    with open(out, "w", encoding="utf-8") as f:
        for w in words:
            for pron in pronunciations[w]:
                n = homophones[tuple(pron)] = homophones.get(tuple(pron), 0) + 1
                if n <= per_sound:
                    f.write(f"{w} {' '.join(pron)} {WORD_BOUNDARY}\n")


def _write_words(words, out: str) -> None:
    """The word list flashlight reads: each word once, in order, and <unk> last."""
    with open(out, "w", encoding="utf-8") as f:
        f.write("".join(f"{w}\n" for w in words) + f"{UNK}\n")


def _nbest_of(i: int) -> list[Hypothesis]:
    decoder, emissions, lengths = _FORKED
    return decoder._nbest(emissions[i:i + 1], lengths[i:i + 1])[0]


def arpa_words(path: str | os.PathLike) -> list[str]:
    """The words of an ARPA file's unigram section (<s>, </s> and <unk> left out)."""
    return list(arpa_unigrams(path))


def arpa_unigrams(path: str | os.PathLike) -> dict[str, float]:
    """Each word of an ARPA file's unigram section (<s>, </s> and <unk> left out) -> its log10
    probability, in the file's order."""
    words = {}
    opener = gzip.open if is_gzip(path) else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            in_unigrams = False
            for line in f:
                line = line.strip()
                if not words and not in_unigrams and line and not line.startswith(("\\", "ngram ")):
                    break  # ARPA opens with \data\ and its counts: this is something else (a binary)
                if line == "\\1-grams:":
                    in_unigrams = True
                elif in_unigrams and line.startswith("\\"):
                    break
                elif in_unigrams and line:
                    parts = line.split()
                    if len(parts) >= 2 and parts[1] not in (BOS, EOS, UNK):
                        words[parts[1]] = _float(parts[0])
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DecodeError(f"{path}: cannot read LM ({e})") from None
    if not in_unigrams:
        raise DecodeError(f"{path}: not an ARPA file (no \\1-grams: section); for a KenLM binary, give --lexicon")
    return words


def _plain_lm(path: str, tmp: Path, unigrams: dict[str, float] | None = None) -> Path:
    """KenLM reads ARPA and its binary format, not gzip: gzip (whatever its name) is unpacked to
    `tmp` first. With `unigrams` (word -> log10 probability), an ARPA copy with those words added
    to its unigrams (and its count), the rest of it copied as it is."""
    p = Path(path)
    if not p.is_file():
        raise DecodeError(f"{path}: {'is a directory, not an LM file' if p.is_dir() else 'no such LM file'}")
    if not is_gzip(p) and not unigrams:  # ARPA or KenLM binary, as it is
        return p
    out = tmp / ("words.arpa" if unigrams else p.stem if p.suffix == ".gz" else p.name)
    try:
        with (gzip.open if is_gzip(p) else open)(p, "rb") as src, open(out, "wb") as dst:
            for line in iter(src.readline, b"") if unigrams else ():  # the header, up to the unigrams
                if line.startswith(b"ngram 1="):
                    line = b"ngram 1=%d\n" % (int(line.split(b"=")[1]) + len(unigrams))
                dst.write(line)
                if line.strip() == b"\\1-grams:":
                    dst.write("".join(f"{p:.6f}\t{w}\n" for w, p in unigrams.items()).encode())
                    break
            shutil.copyfileobj(src, dst, 1 << 20)
    except (OSError, EOFError, gzip.BadGzipFile, ValueError) as e:
        raise DecodeError(f"{path}: cannot unpack ({e})") from None
    return out




class Word(NamedTuple):
    text: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float  # 0..1: mean posterior of the word's units where the alignment puts them


def align_words(log_probs: torch.Tensor, length: int, text: str, vocab: Vocabulary,
                frame_seconds: float, duration: float | None = None,
                spellings: dict[str, list[str]] | None = None) -> list[Word]:
    """Start, end and confidence of each word of `text` (this utterance's transcript), by CTC
    forced alignment (torchaudio's Viterbi) on the model's own log-probabilities (T, V). A word
    is aligned on its letters, or on its units in `spellings` (a lexicon's: `BeamDecoder.spellings`).
    DecodeError for a word whose units are not the model's.

    A CTC model marks each unit with a spike a frame or two wide, somewhere inside its sound;
    a word's spikes span less than the word. So each word is widened by half the spacing of its
    own spikes on either side (as if each spike sat mid-unit), never past the middle of the gap
    to its neighbour. Times are clipped to `duration` (the last frame reaches past the audio).
    """
    from torchaudio.functional import forced_align, merge_tokens

    words = text.split()
    if not words or length <= 0:
        return []
    targets = []
    for k, word in enumerate(words):
        units = (spellings or {}).get(word) or (vocab.spell([word]) if word in (vocab.pronunciations or {}) else word)
        unknown = vocab.foreign(units)
        if unknown:
            raise DecodeError(f"no word times: {word[:40]!r} has {unknown[0][:20]!r}, not one of the model's units")
        targets += [vocab.index[u] for u in units] + ([vocab.index[WORD_BOUNDARY]] if k + 1 < len(words) else [])
    if len(targets) + sum(a == b for a, b in zip(targets, targets[1:])) > length:
        return []  # more units than frames: no alignment exists
    emissions = log_probs[:length].detach().float().cpu()[None]
    labels, scores = forced_align(emissions, torch.tensor([targets], dtype=torch.int32), blank=vocab.blank)
    spans = merge_tokens(labels[0], scores[0].exp(), blank=vocab.blank)
    groups, current = [], []
    for span in spans:  # one group of unit spans per word, split at '|'
        if span.token == vocab.index[WORD_BOUNDARY]:
            groups.append(current)
            current = []
        else:
            current.append(span)
    groups.append(current)
    groups = [g for g in groups if g]
    centres = [[(s.start + s.end) / 2 for s in g] for g in groups]
    spacing = [(c[-1] - c[0]) / (len(c) - 1) for c in centres if len(c) > 1]
    typical = sorted(spacing)[len(spacing) // 2] if spacing else 1.0
    result = []
    for k, (word, group, c) in enumerate(zip(words, groups, centres)):
        half = ((c[-1] - c[0]) / (len(c) - 1) if len(c) > 1 else typical) / 2
        start, end = c[0] - half, c[-1] + half
        if k > 0:
            start = max(start, (centres[k - 1][-1] + c[0]) / 2)
        if k + 1 < len(groups):
            end = min(end, (c[-1] + centres[k + 1][0]) / 2)
        limit = length * frame_seconds if duration is None else min(duration, length * frame_seconds)
        start, end = max(0.0, start * frame_seconds), min(limit, end * frame_seconds)
        confidence = sum(float(s.score) * (s.end - s.start) for s in group) / sum(s.end - s.start for s in group)
        result.append(Word(word, round(start, 3), round(end, 3), round(confidence, 3)))
    return result
