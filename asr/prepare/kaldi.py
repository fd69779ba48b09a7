"""Kaldi and ESPnet data directories, in and out, so an existing recipe's data preparation can be
used here unchanged (and ours used there).

In: `wav.scp` (`RECID PATH`, relative paths taken from the current folder as Kaldi's tools take
them, so run it where the recipe runs; or a command ending in `|` such as `sox ... |`, `flac -c -d
... |`, `sph2pipe ... |`), `text` (`UTTID WORDS...`; markers such as `<UNK>` or `[NOISE]` are not words
and are dropped), optionally `segments` (`UTTID RECID START END`,
END -1 for the end of the recording) and `utt2spk` (`UTTID SPEAKER`). Without `segments` each
recording is one utterance. A command is run only with `run_pipes` (`--run-pipes`): its output is
read once and kept as OUT/audio/RECID.flac; without the flag, each is one reported line. Writes
OUT/NAME.jsonl (NAME: the data directory's own name), one line per utterance, with NeMo's
`offset` for segments and the Kaldi ids in `utt_id` and `speaker`.

Out (`asr to-kaldi MANIFEST DIR`): wav.scp, text, utt2spk, spk2utt, and segments whenever an
utterance is part of a recording; files sorted as Kaldi's tools expect, ids without whitespace
('_' for it), and each utterance id led by its speaker's (`SPEAKER-ID` where it was not).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from asr import audio
from asr.data import Utterance
from asr.prepare import PrepareError, PrepareResult, write_splits
from asr.text import normalize


def prepare(src: Path, out_dir: Path, run_pipes: bool = False) -> PrepareResult:
    utts, problems = read_data_dir(src, out_dir / "audio", run_pipes)
    return write_splits(out_dir, {src.resolve().name: utts}, problems)


def read_data_dir(src: Path, audio_dir: Path, run_pipes: bool = False,
                  root: Path | None = None) -> tuple[list[Utterance], list[str]]:
    """The utterances of a Kaldi data directory, and a line for each left out. Relative paths in
    wav.scp are taken from `root` (None: the current folder, as Kaldi's tools take them)."""
    if not (src / "wav.scp").is_file() or not (src / "text").is_file():
        raise PrepareError(f"{src}: not a Kaldi data directory (it needs wav.scp and text)")
    problems: list[str] = []
    recordings, unreadable = _recordings(src / "wav.scp", audio_dir, run_pipes, problems, root)
    texts = _table(src / "text", problems, min_fields=1)
    speakers = _table(src / "utt2spk", problems) if (src / "utt2spk").is_file() else {}
    if (src / "segments").is_file():
        segments = {}
        for utt_id, (fields, where) in _table(src / "segments", problems, with_lines=True).items():
            try:
                rec, start, end = fields.split()
                segments[utt_id] = (rec, float(start), float(end), where)
            except ValueError:
                problems.append(f"{where}: expected 'UTTID RECID START END', left out")
    else:  # each recording is its own utterance (an unreadable one is reported once, in wav.scp)
        segments = {rec: (rec, None, None, f"{src / 'wav.scp'}") for rec in recordings.keys() | unreadable}

    utts = []
    for utt_id in sorted(texts.keys() | segments.keys()):
        if utt_id not in segments:
            problems.append(f"{src / 'text'}: {utt_id}: no audio for it ({'segments' if (src / 'segments').is_file() else 'wav.scp'}), left out")
            continue
        if utt_id not in texts:
            problems.append(f"{segments[utt_id][3]}: {utt_id}: no transcript in {src / 'text'}, left out")
            continue
        rec, start, end, where = segments[utt_id]
        if rec not in recordings:
            if rec not in unreadable:  # (those are reported once, in wav.scp)
                problems.append(f"{where}: {utt_id}: recording {rec} is not in wav.scp, left out")
            continue
        path, seconds = recordings[rec]
        text = normalize(" ".join(w for w in texts[utt_id].split() if not _MARKER.fullmatch(w)))
        if not text:
            problems.append(f"{src / 'text'}: {utt_id}: no words in {texts[utt_id]!r}, left out")
            continue
        if start is None:
            utts.append(Utterance(path, round(seconds, 4), text, None, utt_id, speakers.get(utt_id)))
            continue
        end = seconds if end < 0 else end
        if not 0 <= start < end or end > seconds + 0.05:
            problems.append(f"{where}: {utt_id}: segment {start:g}-{end:g} s is not inside {rec} (0-{seconds:.2f} s), left out")
            continue
        utts.append(Utterance(path, round(min(end, seconds) - start, 4), text, start, utt_id, speakers.get(utt_id)))
    if not utts:
        raise PrepareError(f"{src}: no utterance with both audio and a transcript" + (f" ({problems[0]})" if problems else ""))
    return utts, problems


# Kaldi's non-speech markers, a whole word each: <UNK>, <sil>, [NOISE], [laughter]. Not words.
_MARKER = re.compile(r"<[^<>\s]*>|\[[^\[\]\s]*\]")


def _recordings(wav_scp: Path, audio_dir: Path, run_pipes: bool, problems: list[str], root: Path | None = None):
    """{RECID: (audio file, seconds)} for every usable line of wav.scp, and the ids of the others."""
    recordings, unreadable = {}, set()
    for rec, (value, where) in _table(wav_scp, problems, with_lines=True).items():
        try:
            if value.endswith("|"):
                if not run_pipes:
                    raise audio.AudioError(rec, f"a command, not a file ({value[:60]}); pass --run-pipes to run it")
                path = _run_pipe(rec, value[:-1].strip(), audio_dir)
            elif re.search(r"\.ark:\d+$", value):
                raise audio.AudioError(rec, f"an archive offset ({value}): convert it to files first (wav-copy)")
            else:
                path = str((root / value if root else Path(value)).resolve())
            recordings[rec] = (path, audio.duration(path))
        except audio.AudioError as e:
            problems.append(f"{where}: {rec}: {e.problem if e.path == rec else e}, its utterances left out")
            unreadable.add(rec)
    return recordings, unreadable


def _run_pipe(rec: str, command: str, audio_dir: Path) -> str:
    """The command's audio, kept as FLAC: run once, and not again while the file is there."""
    out = audio_dir / f"{rec}.flac"
    if out.is_file():
        return str(out.resolve())
    try:
        done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise audio.AudioError(rec, f"the command ran for 10 minutes: {command[:60]}") from None
    if done.returncode:
        said = done.stderr.decode(errors="replace").strip().splitlines()
        raise audio.AudioError(rec, f"the command failed (exit {done.returncode}: {said[-1] if said else 'no message'})")
    try:
        data, rate = sf.read(io.BytesIO(done.stdout), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, ValueError) as e:
        raise audio.AudioError(rec, f"the command's output is not audio ({e})") from None
    audio_dir.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    sf.write(tmp, data, rate, format="FLAC", subtype="PCM_16" if np.abs(data).max() <= 1 else "PCM_24")
    os.replace(tmp, out)
    return str(out.resolve())


def _table(path: Path, problems: list[str], min_fields: int = 1, with_lines: bool = False) -> dict:
    """{first field: the rest of the line} of a Kaldi table file; duplicate keys and lines with
    nothing after the key are reported. With `with_lines`, the values are (rest, 'FILE:LINE')."""
    table = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise PrepareError(f"{path}: cannot read ({e.__class__.__name__}: {e})") from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        key, *rest = line.split(maxsplit=1)  # Kaldi: any whitespace after the id, tabs too
        rest = rest[0].strip() if rest else ""
        where = f"{path}:{number}"
        if len(rest.split()) < min_fields:
            problems.append(f"{where}: {key}: nothing after the id, left out")
        elif key in table:
            problems.append(f"{where}: {key}: a second line for this id, left out")
        else:
            table[key] = (rest, where) if with_lines else rest
    return table


def _kaldi_id(name: str) -> str:
    """Kaldi splits its tables at whitespace: an id cannot hold any."""
    return re.sub(r"\s+", "_", name.strip())


def write_data_dir(utts: list[Utterance], out_dir: str | os.PathLike) -> list[Path]:
    """A Kaldi data directory of the manifest's utterances; returns the files written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rec_of: dict[str, str] = {}  # audio file -> recording id
    used: set[str] = set()
    for u in utts:
        if u.audio_filepath not in rec_of:
            stem, n = _kaldi_id(Path(u.audio_filepath).stem), 1
            rec = stem
            while rec in used:
                n += 1
                rec = f"{stem}-{n}"
            rec_of[u.audio_filepath] = rec
            used.add(rec)
    rows = []
    for u in utts:
        rec = rec_of[u.audio_filepath]
        start = u.offset or 0.0
        utt_id = _kaldi_id(u.utt_id) if u.utt_id else (
            rec if u.offset is None else f"{rec}-{round(start * 100):07d}-{round((start + u.duration) * 100):07d}")
        speaker = _kaldi_id(u.speaker) if u.speaker else utt_id
        if not utt_id.startswith(speaker):  # Kaldi sorts utt2spk by both: the speaker must lead the id
            utt_id = f"{speaker}-{utt_id}"
        rows.append((utt_id, rec, start, start + u.duration, u.text, speaker))
    ids = [r[0] for r in rows]
    if len(set(ids)) != len(ids):
        raise PrepareError(f"{len(ids) - len(set(ids))} utterance ids occur twice: a Kaldi directory needs them unique")
    rows.sort()
    by_speaker: dict[str, list[str]] = {}
    for r in rows:
        by_speaker.setdefault(r[5], []).append(r[0])
    files = {
        "wav.scp": sorted(f"{rec} {path}" for path, rec in rec_of.items()),
        "text": [f"{r[0]} {r[4]}" for r in rows],
        "utt2spk": [f"{r[0]} {r[5]}" for r in rows],
        "spk2utt": [f"{spk} {' '.join(ids)}" for spk, ids in sorted(by_speaker.items())],
    }
    if any(u.offset is not None for u in utts):
        files["segments"] = [f"{r[0]} {r[1]} {r[2]:.4f} {r[3]:.4f}" for r in rows]
    written = []
    for name, lines in files.items():
        path = out_dir / name
        tmp = path.with_name(name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
        os.replace(tmp, path)
        written.append(path)
    return written
