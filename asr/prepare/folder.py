"""Any folder of audio files with a transcript beside each: `NAME.wav` (or any format `asr` reads)
and `NAME.txt`, in any sub-folders. The layout of Cathy, the Asterisk prompts, librispeech-silver
and most home-made corpora.

The split is by group: every take of one prompt must land on one side, or a test sentence has
been heard in training. A file's group is its normalised transcript (takes of one prompt share
it) unless `group` is a regular expression, whose match in the file's name is the group then
(`arctic_[ab][0-9]{4}` for Cathy's `arctic_a0001_1592748574`). A group goes to test when any of
its files matches a test pattern, else to dev when any matches a dev pattern, else by a stable
hash of the group into the test and dev fractions, else to train. Patterns are shell globs on the
file's name, its path under SRC (both without extension) or its group; a pattern file holds one
a line, so a list of names is a pattern file too.

Transcripts are normalised as every corpus is (asr.text): numbers spoken as words, punctuation
dropped, `<tags>` (`<noise>`, `<beep>`) dropped, and a file whose transcript is tags only is left
out as non-speech. What that changed beyond case and punctuation is written to
OUT/text_changes.tsv and summed up in one line, never dropped unsaid. OUT/lm_text.txt holds the
training transcripts.
"""

from __future__ import annotations

import fnmatch
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from asr.audio import AUDIO_EXTENSIONS
from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, utterance, write_lm_text, write_splits
from asr.text import normalize_verbose

_TAG = re.compile(r"<[^<>]*>")


@dataclass
class FolderSplit:
    test: list[str] = field(default_factory=list)  # glob patterns
    dev: list[str] = field(default_factory=list)
    test_fraction: float = 0.0  # of the groups no pattern placed, by a stable hash of the group
    dev_fraction: float = 0.0
    group: str | None = None  # a regular expression on the name; default: the transcript

    def __post_init__(self):
        if not (0 <= self.test_fraction and 0 <= self.dev_fraction and self.test_fraction + self.dev_fraction < 1):
            raise PrepareError("--test-fraction and --dev-fraction must be >= 0 and add up to less than 1")
        try:
            self._group = re.compile(self.group) if self.group else None
        except re.error as e:
            raise PrepareError(f"--group {self.group!r}: not a regular expression ({e})") from None

    def group_of(self, name: str, text: str) -> str | None:
        if self._group is None:
            return text
        match = self._group.search(name)
        return match.group(0) if match else None

    def side(self, names: list[str], group: str) -> tuple[str, list[str]]:
        """The side of a group, from its files' names and the group itself, and the patterns that
        placed it there (none where the hash did)."""
        for side, patterns in (("test", self.test), ("dev", self.dev)):
            if matches([*names, group], patterns):
                return side, patterns
        position = int.from_bytes(hashlib.sha256(group.encode()).digest()[:8], "big") / 2**64
        if position < self.test_fraction:
            return "test", []
        return ("dev" if position < self.test_fraction + self.dev_fraction else "train"), []


def matches(keys: list[str], patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(k, p) for p in patterns for k in keys)


def _names(name: str) -> list[str]:
    """A file is matched by its path under SRC and by its bare name, both without extension."""
    return [name, name.rsplit("/", 1)[-1]]


def read_patterns(path: str) -> list[str]:
    """A pattern file: one glob (or plain name) a line; blank lines and '#' comments are skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PrepareError(f"{path}: cannot read the pattern file ({e.__class__.__name__}: {e})") from None
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def prepare(src: Path, out_dir: Path, split: FolderSplit | None = None) -> PrepareResult:
    split = split or FolderSplit()
    problems: list[str] = []
    audio_of: dict[Path, list[Path]] = {}
    ours = out_dir.resolve()  # OUT may be inside SRC: its lm_text.txt is not a transcript
    files = [p for p in sorted(src.rglob("*")) if ours not in p.resolve().parents and p.is_file()]
    for path in files:
        if path.name.lower().endswith(AUDIO_EXTENSIONS):
            audio_of.setdefault(path.with_suffix(""), []).append(path)
    transcripts = {p.with_suffix(""): p for p in files if p.suffix == ".txt"}
    if not audio_of:
        raise PrepareError(f"{src}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in it or its sub-folders")
    # A .txt with nothing of its name beside it is a note (README.txt), reported but no error; one
    # beside a file we cannot read (.m4a) is a recording lost, and is.
    others: dict[Path, list[Path]] = {}
    for path in files:
        if path.suffix != ".txt" and path.with_suffix("") not in audio_of:
            others.setdefault(path.with_suffix(""), []).append(path)
    notes = []
    for stem in sorted(transcripts.keys() - audio_of.keys()):
        if stem in others:
            problems.append(f"{others[stem][0]}: not a format we read ({', '.join(AUDIO_EXTENSIONS)}); "
                            f"its transcript {transcripts[stem].name} left out (convert it, e.g. with ffmpeg)")
        else:
            notes.append(transcripts[stem].relative_to(src).as_posix())

    groups: dict[str, list[tuple[str, Utterance]]] = {}
    changes, spoken, dropped, non_speech = [], 0, 0, []
    for stem, paths in sorted(audio_of.items()):
        if len(paths) > 1:
            problems.append(f"{paths[0]}: {len(paths)} audio files share this name ({', '.join(p.suffix for p in paths)}), left out")
            continue
        if stem not in transcripts:
            problems.append(f"{paths[0]}: no transcript {stem.name}.txt beside it, left out")
            continue
        try:
            raw = " ".join(transcripts[stem].read_text(encoding="utf-8").split())
        except (OSError, UnicodeDecodeError) as e:
            problems.append(f"{transcripts[stem]}: cannot read the transcript ({e.__class__.__name__}), left out")
            continue
        tags = _TAG.findall(raw)  # "<beep ascending>", "<noise>": annotations, not words
        result = normalize_verbose(_TAG.sub(" ", raw))
        if tags and not result.text:
            non_speech.append(transcripts[stem].name)
            continue
        result = result._replace(dropped=" ".join(tags + ([result.dropped] if result.dropped else [])))
        if not result.text:
            problems.append(f"{transcripts[stem]}: no words in the transcript {raw!r}, left out")
            continue
        if result.numbers or result.dropped:
            spoken += bool(result.numbers)
            dropped += bool(result.dropped)
            changes.append(f"{transcripts[stem]}\t{raw}\t{result.text}\t{'; '.join(result.numbers)}\t{result.dropped}")
        name = stem.relative_to(src).as_posix()
        group = split.group_of(name, result.text)
        if group is None:
            problems.append(f"{paths[0]}: --group {split.group!r} does not match its name, left out")
            continue
        utt = utterance(paths[0], result.text, problems)
        if utt:
            groups.setdefault(group, []).append((name, utt))

    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    moved = 0  # files placed by a sibling's pattern, not their own
    for group, members in groups.items():
        side, patterns = split.side([n for name, _ in members for n in _names(name)], group)
        if patterns and not matches([group], patterns):
            moved += sum(not matches(_names(name), patterns) for name, _ in members)
        splits[side] += [utt for _, utt in members]
    if not any(splits.values()):
        raise PrepareError(f"{src}: no audio file with a usable transcript")

    # A split with nothing in it gets no manifest (an empty one could not be read back), and an
    # earlier run's is removed: it would not describe this split.
    for name, utts in splits.items():
        if not utts:
            (out_dir / f"{name}.jsonl").unlink(missing_ok=True)
    result = write_splits(out_dir, {k: v for k, v in splits.items() if v}, problems)
    extras = [write_lm_text(out_dir, [u.text for u in splits["train"]], "training transcripts")]
    if changes:
        tsv, tmp = out_dir / "text_changes.tsv", out_dir / "text_changes.tsv.tmp"
        tmp.write_text("transcript\traw\tnormalised\tnumbers spoken\tdropped\n" + "".join(c + "\n" for c in changes),
                       encoding="utf-8")
        tmp.replace(tsv)
        extras.append(f"{tsv}\t{spoken} transcripts had numbers spoken as words, {dropped} had characters "
                      "dropped that are not punctuation: each with its raw and normalised text")
    if notes:
        extras.append(f"{len(notes)} .txt files with no audio of their name, taken for notes, not transcripts: "
                      + ", ".join(notes[:5]) + (" ..." if len(notes) > 5 else ""))
    if non_speech:
        extras.append(f"{len(non_speech)} files left out as non-speech, their transcripts only <tags>: "
                      + ", ".join(non_speech[:5]) + (" ..." if len(non_speech) > 5 else ""))
    if moved:
        extras.append(f"{moved} files went to dev or test with another take of their group, "
                      "though no pattern named them")
    return result._replace(extras=extras)
