"""LibriSpeech: `SUBSET/SPEAKER/CHAPTER/SPEAKER-CHAPTER-UTT.flac` with `SPEAKER-CHAPTER.trans.txt`.

One manifest per subset folder found under SRC (`OUT/dev-clean.jsonl`, ...). Durations come from
the FLAC headers. A transcript line without audio, or audio without a transcript line, is
reported, never silently dropped. With train-* subsets, OUT/lm_text.txt holds their transcripts.
"""

from __future__ import annotations

from pathlib import Path

from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, utterance, write_lm_text, write_splits
from asr.text import normalize


def prepare(src: Path, out_dir: Path) -> PrepareResult:
    # SRC may be the LibriSpeech folder (holding subsets) or one subset folder itself.
    subsets = sorted(d for d in src.iterdir() if d.is_dir() and any(d.glob("*/*/*.trans.txt")))
    if not subsets and any(src.glob("*/*/*.trans.txt")):
        subsets = [src]
    if not subsets:
        raise PrepareError(f"{src}: no LibriSpeech subset (SUBSET/SPEAKER/CHAPTER/*.trans.txt) found")
    splits, problems = {}, []
    for subset in subsets:
        splits[subset.name] = _subset(subset, problems)
    result = write_splits(out_dir, splits, problems)
    train = [u.text for name, utts in splits.items() if name.startswith("train") for u in utts]
    return result._replace(extras=[write_lm_text(out_dir, train, "train-* transcripts")]) if train else result


def _subset(folder: Path, problems: list[str]) -> list[Utterance]:
    utts = []
    for trans in sorted(folder.glob("*/*/*.trans.txt")):
        chapter = trans.parent
        seen = set()
        for number, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            utt_id, _, text = line.strip().partition(" ")
            flac = chapter / f"{utt_id}.flac"
            seen.add(flac.name)
            if not flac.exists():
                problems.append(f"{trans}:{number}: no audio file {flac.name}, left out")
                continue
            utt = utterance(flac, normalize(text), problems)
            if utt:
                utts.append(utt)
        for flac in sorted(chapter.glob("*.flac")):
            if flac.name not in seen:
                problems.append(f"{flac}: no transcript line in {trans.name}, left out")
    return utts
