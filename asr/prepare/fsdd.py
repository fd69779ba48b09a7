"""Free Spoken Digit Dataset: `recordings/{digit}_{speaker}_{index}.wav`, transcript = the digit's word.

Fixed splits by speaker (../shared/data/README.md): dev theo, test yweweler (never heard in
training), train every other speaker. Also OUT/lm_text.txt: the training transcripts, for an
LM whose lexicon is the ten digit words.
"""

from __future__ import annotations

import re
from pathlib import Path

from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, utterance, write_lm_text, write_splits

WORDS = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
SPLIT_OF_SPEAKER = {"theo": "dev", "yweweler": "test"}
_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")


def prepare(src: Path, out_dir: Path) -> PrepareResult:
    folder = src / "recordings" if (src / "recordings").is_dir() else src
    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    problems = []
    for wav in sorted(folder.glob("*.wav")):
        match = _NAME.match(wav.name)
        if not match:
            problems.append(f"{wav}: name is not DIGIT_SPEAKER_INDEX.wav, left out")
            continue
        digit, speaker, _ = match.groups()
        utt = utterance(wav, WORDS[int(digit)], problems)
        if utt:
            splits[SPLIT_OF_SPEAKER.get(speaker, "train")].append(utt)
    if not any(splits.values()):
        raise PrepareError(f"{src}: no FSDD recordings (DIGIT_SPEAKER_INDEX.wav) found")
    result = write_splits(out_dir, splits, problems)
    return result._replace(extras=[write_lm_text(out_dir, [u.text for u in splits["train"]], "training transcripts")])
