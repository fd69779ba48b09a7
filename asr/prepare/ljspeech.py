"""LJ Speech 1.1: `metadata.csv` (id|raw text|normalised text) and `wavs/ID.wav` (or `.flac`).

Fixed splits (../shared/data/README.md): dev LJ002-0131..0160, test LJ002-0161..0200, train all
other clips that have audio (in the shared subset: LJ001-* and LJ002-0001..0130).

Also writes OUT/lm_text.txt: the text of every row of metadata.csv but the dev and test rows,
audio or not, for `asr lm build` (a language model that has read the test sentences would
make any test score meaningless).
"""

from __future__ import annotations

from pathlib import Path

from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, utterance, write_lm_text, write_splits
from asr.text import normalize

DEV = {f"LJ002-{i:04d}" for i in range(131, 161)}
TEST = {f"LJ002-{i:04d}" for i in range(161, 201)}


def split_of(clip_id: str) -> str:
    return "test" if clip_id in TEST else "dev" if clip_id in DEV else "train"


def read_metadata(path: Path, problems: list[str]) -> list[tuple[str, str]]:
    """(id, normalised text) for every well-formed row of metadata.csv; the others go to `problems`."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        fields = line.split("|")
        if len(fields) != 3:
            problems.append(f"{path}:{number}: expected 3 fields separated by '|', got {len(fields)}, left out")
            continue
        rows.append((fields[0], fields[2]))
    return rows


def prepare(src: Path, out_dir: Path) -> PrepareResult:
    metadata = src / "metadata.csv"
    if not metadata.is_file():
        raise PrepareError(f"{src}: no metadata.csv (expected the LJSpeech-1.1 folder)")
    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    problems: list[str] = []
    rows = [(clip_id, normalize(text)) for clip_id, text in read_metadata(metadata, problems)]
    lm_text = [text for clip_id, text in rows if split_of(clip_id) == "train"]
    for clip_id, text in rows:
        # The published corpus has .wav; the shared copy has lossless .flac. Rows without audio
        # are expected in a subset (metadata.csv lists the whole corpus) and are not problems.
        wav = next((p for p in (src / "wavs" / f"{clip_id}.wav", src / "wavs" / f"{clip_id}.flac") if p.exists()), None)
        if wav is None:
            continue
        if not text:
            problems.append(f"{metadata}: {clip_id}: empty transcript, left out")
            continue
        utt = utterance(wav, text, problems)
        if utt:
            splits[split_of(clip_id)].append(utt)
    if not any(splits.values()):
        raise PrepareError(f"{src}: no clip of metadata.csv has audio in {src / 'wavs'}")
    result = write_splits(out_dir, splits, problems)
    return result._replace(extras=[write_lm_text(out_dir, lm_text, "no dev or test row")])
