"""Corpus preparation: one small module per corpus, its layout in, JSON-lines manifests out."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

from asr import audio
from asr.data import Utterance, write_manifest


class SplitSummary(NamedTuple):
    name: str
    manifest: Path
    utterances: int
    hours: float


class PrepareResult(NamedTuple):
    splits: list[SplitSummary]
    problems: list[str]  # one line each: files or transcript lines that were left out, and why
    extras: list[str] = []  # one line each on any other file written (e.g. language-model text)


class PrepareError(Exception):
    """A corpus folder that cannot be prepared at all; the message names it."""


def utterance(path: Path, text: str, problems: list[str]) -> Utterance | None:
    """The utterance, its duration read from the file header; None, with the reason added to
    `problems`, where the audio cannot be read."""
    try:
        duration = audio.duration(path)
        resolved = str(path.resolve())
        resolved.encode("utf-8")
    except audio.AudioError as e:
        problems.append(f"{e}, left out")
        return None
    except UnicodeEncodeError:  # a manifest is UTF-8 JSON: it cannot name this file
        shown = os.fsencode(path).decode("utf-8", "backslashreplace")  # printable anywhere
        problems.append(f"{shown}: the file's name is not UTF-8 (rename it), left out")
        return None
    return Utterance(resolved, round(duration, 4), text)


def write_splits(out_dir: str | os.PathLike, splits: dict[str, list[Utterance]], problems: list[str]) -> PrepareResult:
    out_dir = Path(out_dir)
    summaries = []
    for name, utts in splits.items():
        path = out_dir / f"{name}.jsonl"
        write_manifest(path, utts)
        summaries.append(SplitSummary(name, path, len(utts), sum(u.duration for u in utts) / 3600))
    return PrepareResult(summaries, problems)


def write_lm_text(out_dir: str | os.PathLike, sentences: list[str], source: str) -> str:
    """OUT/lm_text.txt, a sentence a line, for `asr lm build`; returns the line to report."""
    path = Path(out_dir) / "lm_text.txt"
    tmp = path.with_name(path.name + ".tmp")
    sentences = [s for s in sentences if s]
    tmp.write_text("".join(s + "\n" for s in sentences), encoding="utf-8")
    tmp.replace(path)
    words = sum(len(s.split()) for s in sentences)
    return f"{path}\t{len(sentences)} sentences, {words} words (LM text: {source})"


def prepare(corpus: str, src: str | os.PathLike, out_dir: str | os.PathLike, **options) -> PrepareResult:
    """`options` go to the preparer: `split` (a folder.FolderSplit) for 'folder', `run_pipes`
    for 'kaldi'; the named corpora have fixed splits and take none."""
    from asr.prepare import an4, folder, fsdd, kaldi, librispeech, ljspeech, speechocean762

    preparers = {"ljspeech": ljspeech.prepare, "fsdd": fsdd.prepare, "librispeech": librispeech.prepare,
                 "an4": an4.prepare, "folder": folder.prepare, "kaldi": kaldi.prepare,
                 "speechocean762": speechocean762.prepare}
    if corpus not in preparers:
        raise PrepareError(f"unknown corpus {corpus!r}; choose from {', '.join(preparers)}")
    if not Path(src).is_dir():
        raise PrepareError(f"{src}: not a folder")
    try:
        return preparers[corpus](Path(src), Path(out_dir), **options)
    except UnicodeDecodeError as e:
        raise PrepareError(f"{src}: a transcript file is not UTF-8 ({e.reason} at byte {e.start})") from None
