"""speechocean762: English read by 250 speakers whose first language is Mandarin, children and
adults, in its published Kaldi layout (`train/`, `test/`: wav.scp, text, utt2spk; audio under
`WAVE/`, wav.scp's paths relative to the corpus folder).

Split by speaker, as `splits/{train,dev,test}.speakers` list them (one id a line, as in
utt2spk): ../shared/data/README.md fixes test = the 50 lowest-numbered speakers of the published
test set, dev = its next 25, train = the rest (175 speakers). Without a `splits/` folder the same
rule is applied to the published sets. Also OUT/lm_text.txt: the training transcripts, less every
sentence that a dev or test speaker reads (about 90 prompts recur across speakers).
"""

from __future__ import annotations

from pathlib import Path

from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, write_lm_text, write_splits
from asr.prepare.kaldi import read_data_dir

SPLITS = ("train", "dev", "test")


def prepare(src: Path, out_dir: Path) -> PrepareResult:
    if not (src / "train" / "wav.scp").is_file() or not (src / "test" / "wav.scp").is_file():
        raise PrepareError(f"{src}: not speechocean762 (it needs train/ and test/ Kaldi data directories)")
    utts, problems, published_test = [], [], set()
    for part in ("train", "test"):
        read, left_out = read_data_dir(src / part, out_dir / "audio", root=src)
        utts += read
        problems += left_out
        if part == "test":
            published_test = {u.speaker for u in read}
    split_of = _speaker_splits(src, {u.speaker for u in utts}, published_test)
    splits: dict[str, list[Utterance]] = {name: [] for name in SPLITS}
    for u in utts:
        if u.speaker not in split_of:
            problems.append(f"{src}: {u.utt_id}: speaker {u.speaker} is in no split, left out")
            continue
        splits[split_of[u.speaker]].append(u)
    held_out = {u.text for name in ("dev", "test") for u in splits[name]}
    result = write_splits(out_dir, splits, problems)
    lm_text = [u.text for u in splits["train"] if u.text not in held_out]
    return result._replace(extras=[write_lm_text(out_dir, lm_text, "training transcripts, no dev or test sentence")])


def _speaker_splits(src: Path, speakers: set[str], published_test: set[str]) -> dict[str, str]:
    """{speaker: split}, from splits/*.speakers, or by the rule on the published test set's
    speakers where those files are absent."""
    folder = src / "splits"
    if not folder.is_dir():
        test_set = sorted(published_test)
        return {s: "test" if s in test_set[:50] else "dev" if s in test_set[50:75] else "train" for s in speakers}
    split_of = {}
    for name in SPLITS:
        path = folder / f"{name}.speakers"
        if not path.is_file():
            raise PrepareError(f"{path}: missing (splits/ needs train, dev and test .speakers)")
        for speaker in path.read_text(encoding="utf-8").split():
            if split_of.setdefault(speaker, name) != name:
                raise PrepareError(f"{path}: speaker {speaker} is also in {split_of[speaker]}.speakers")
    return split_of
