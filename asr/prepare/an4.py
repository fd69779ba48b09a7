"""AN4 (CMU census database), in either published form: `an4_sphere` (`wav/**/*.sph`, NIST
SPHERE, what ESPnet and NeMo download) or `an4_raw.bigendian` (`wav/**/*.raw`, headerless
big-endian 16-bit 16 kHz mono, the same tree).

`etc/an4_{train,test}.fileids` list the utterances (`an4_clstk/fash/an251-fash-b`) and
`etc/an4_{train,test}.transcription` their texts (`<s> YES </s> (an251-fash-b)` in train,
`RUBOUT G M E F THREE NINE (an406-fcaw-b)` in test). ESPnet's split, so that figures compare
with its published ones: dev = the first 100 train fileids, train = the other 848, test = the
130 test utterances. A fileid without a transcript, a transcript without a fileid, or a listed
file that is missing or unreadable is reported and left out.

`.sph` files are read where they are. `.raw` files carry no header for a reader to go by, so they
are converted once to FLAC under OUT/flac/. OUT/lm_text.txt holds the train split's transcripts
only (dev tunes the LM weights; test is never read into a model).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, utterance, write_lm_text, write_splits
from asr.text import normalize

DEV_UTTERANCES = 100  # the first lines of an4_train.fileids, as ESPnet's egs/an4 takes them
SAMPLE_RATE = 16000  # of the .raw form
LINE = re.compile(r"^\s*(?:<s>)?(.*?)(?:</s>)?\s*\(([^()\s]+)\)\s*$")


def prepare(src: Path, out_dir: Path) -> PrepareResult:
    if not (src / "etc").is_dir() and (src / "an4" / "etc").is_dir():  # the folder the archive unpacks into
        src = src / "an4"
    etc = src / "etc"
    lists = [etc / f"an4_{part}.{kind}" for part in ("train", "test") for kind in ("fileids", "transcription")]
    missing = [p.name for p in lists if not p.is_file()]
    if missing:
        raise PrepareError(f"{src}: not an AN4 folder (no {', '.join(f'etc/{m}' for m in missing)})")
    problems: list[str] = []
    train = _part(src, "train", out_dir, problems)
    test = _part(src, "test", out_dir, problems)
    splits = {"train": [u for i, u in train if i >= DEV_UTTERANCES],
              "dev": [u for i, u in train if i < DEV_UTTERANCES],
              "test": [u for _, u in test]}
    result = write_splits(out_dir, splits, problems)
    lm_text = [u.text for u in splits["train"]]
    return result._replace(extras=[write_lm_text(out_dir, lm_text, "AN4 train transcripts")])


def _part(src: Path, part: str, out_dir: Path, problems: list[str]) -> list[tuple[int, Utterance]]:
    """(line index in the fileids, utterance) for each utterance of `part` that could be read."""
    fileids_path, trans_path = src / "etc" / f"an4_{part}.fileids", src / "etc" / f"an4_{part}.transcription"
    texts: dict[str, str] = {}
    for number, line in enumerate(trans_path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        match = LINE.match(line)
        if not match:
            problems.append(f"{trans_path}:{number}: not 'TEXT (utterance-id)', left out")
            continue
        texts[match.group(2)] = normalize(match.group(1))
    utts, listed = [], set()
    fileids = [line.strip() for line in fileids_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for index, fileid in enumerate(fileids):
        utt_id = fileid.rsplit("/", 1)[-1]
        listed.add(utt_id)
        if utt_id not in texts:
            problems.append(f"{fileids_path}: {fileid}: no line in {trans_path.name}, left out")
            continue
        if not texts[utt_id]:
            problems.append(f"{trans_path}: {utt_id}: empty transcript, left out")
            continue
        path = _audio(src, fileid, out_dir, problems)
        utt = utterance(path, texts[utt_id], problems) if path else None
        if utt:
            utts.append((index, utt))
    for utt_id in texts.keys() - listed:
        problems.append(f"{trans_path}: {utt_id}: not listed in {fileids_path.name}, left out")
    return utts


def _audio(src: Path, fileid: str, out_dir: Path, problems: list[str]) -> Path | None:
    """The readable audio file of one fileid: its .sph (or .wav), or its .raw converted to FLAC."""
    if Path(fileid).is_absolute() or ".." in Path(fileid).parts:
        problems.append(f"{src / 'etc'}: {fileid}: a file id must stay inside wav/, left out")
        return None
    stem = src / "wav" / fileid
    for ext in (".sph", ".wav"):
        if stem.with_suffix(ext).is_file():
            return stem.with_suffix(ext)
    raw = stem.with_suffix(".raw")
    if not raw.is_file():
        problems.append(f"{stem}.sph: no such file (nor .raw), left out")
        return None
    data = raw.read_bytes()
    if not data or len(data) % 2:
        problems.append(f"{raw}: {'empty file' if not data else 'an odd number of bytes'}: not 16-bit samples, left out")
        return None
    flac = out_dir / "flac" / f"{fileid}.flac"
    if not flac.is_file():
        flac.parent.mkdir(parents=True, exist_ok=True)
        tmp = flac.with_name(flac.name + ".tmp")
        samples = np.frombuffer(data, ">i2").astype(np.int16)  # soundfile writes an array's bytes as they lie
        sf.write(tmp, samples, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
        tmp.replace(flac)  # a run cut short leaves no half-written FLAC behind for the next one
    return flac
