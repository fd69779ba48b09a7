"""Hostile input for the `asr` command: a folder of junk and oddities next to good files.

Whatever the file, `asr transcribe` prints a transcript or one line naming the file and the
problem, never a traceback or a C library's chatter; good files in the same call still come out,
and the exit code says whether anything failed.
"""

import os
import subprocess
import sys
import wave as wavfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from conftest import tone_speech

ASR = str(Path(sys.executable).parent / "asr")  # the console script, as a user runs it


def hostile_corpus(folder: Path) -> tuple[dict[str, str], list[str]]:
    """Files that must fail ({name: words their error contains}) and files that must transcribe."""
    folder.mkdir(parents=True, exist_ok=True)
    speech = tone_speech("CAB")  # a word the memorised model knows
    rng = np.random.default_rng(0)
    fail = {}

    (folder / "empty.wav").write_bytes(b"")
    fail["empty.wav"] = "empty file"
    with wavfile.open(str(folder / "zero_length.wav"), "wb") as w:  # a valid header, no frames
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
    fail["zero_length.wav"] = "no audio"
    sf.write(folder / "full.wav", speech, 16000, subtype="PCM_16")
    (folder / "header_only.wav").write_bytes((folder / "full.wav").read_bytes()[:44])  # claims frames it lacks
    fail["header_only.wav"] = ""
    (folder / "full.wav").unlink()
    sf.write(folder / "long.flac", np.tile(speech, 20), 16000)
    data = (folder / "long.flac").read_bytes()
    (folder / "truncated.flac").write_bytes(data[: len(data) // 2])
    (folder / "long.flac").unlink()
    fail["truncated.flac"] = ""
    for ext in ("wav", "flac", "mp3"):
        (folder / f"random.{ext}").write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
        fail[f"random.{ext}"] = ""
    (folder / "notes.wav").write_text("this is text, not audio\n")
    fail["notes.wav"] = "not a readable audio file"
    (folder / "folder.wav").mkdir()
    fail["folder.wav"] = "folder"
    bad = speech.copy()
    bad[100], bad[200] = np.nan, np.inf
    sf.write(folder / "nan.wav", bad, 16000, subtype="FLOAT")
    fail["nan.wav"] = "NaN or infinity"
    (folder / "loop_a.wav").symlink_to(folder / "loop_b.wav")
    (folder / "loop_b.wav").symlink_to(folder / "loop_a.wav")
    fail["loop_a.wav"] = "cannot open"

    good = []
    for name, rate, channels, subtype in [("u8.wav", 16000, 1, "PCM_U8"), ("pcm24.wav", 16000, 1, "PCM_24"),
                                          ("double.wav", 16000, 1, "DOUBLE"), ("six.wav", 16000, 6, "PCM_16"),
                                          ("rate8k.wav", 8000, 1, "PCM_16"), ("rate192k.flac", 192000, 1, "PCM_24")]:
        x = speech if rate == 16000 else soxr.resample(speech, 16000, rate)
        sf.write(folder / name, np.tile(x[:, None], (1, channels)), rate, subtype=subtype)
        good.append(name)
    sf.write(folder / "tiny.wav", speech[:160], 16000)  # 0.01 s
    good.append("tiny.wav")
    odd = os.path.join(os.fsencode(folder), b"caf\xe9.wav")  # a Latin-1 name: not UTF-8
    sf.write(odd, speech, 16000)
    good.append(os.fsdecode(b"caf\xe9.wav"))
    locked = folder / "locked.wav"
    sf.write(locked, speech, 16000)
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads it anyway: then it is a good file
        good.append("locked.wav")
    else:
        fail["locked.wav"] = "permission denied"
    return fail, good


def test_transcribe_survives_a_folder_of_hostile_files(memorised, tmp_path):
    fail, good = hostile_corpus(tmp_path / "in")
    names = sorted([*fail, *good])
    run = subprocess.run([ASR, "transcribe", "--model", str(memorised.exp / "best.pt"),
                          *[os.path.join(os.fsencode(tmp_path / "in"), os.fsencode(n)) for n in names]],
                         capture_output=True)
    out, err = run.stdout.decode("utf-8", "surrogateescape"), run.stderr.decode("utf-8", "surrogateescape")
    assert run.returncode == 1, err
    assert "Traceback" not in err
    errors = err.splitlines()
    assert len(errors) == len(fail), err  # one line each: no C library noise in between
    for name, words in fail.items():
        line = [e for e in errors if e.startswith(f"asr: error: {tmp_path / 'in' / name}: ")]
        assert len(line) == 1 and words in line[0], (name, errors)
    transcribed = [line.split("\t")[0] for line in out.splitlines()]
    assert sorted(transcribed) == sorted(str(tmp_path / "in" / n) for n in good)
    # the good files say what they say, whatever their format
    texts = dict(line.split("\t") for line in out.splitlines())
    assert all(texts[str(tmp_path / "in" / n)] == "CAB" for n in good if n != "tiny.wav"), texts


def test_a_folder_of_hostile_files_given_as_a_folder(memorised, tmp_path):
    fail, good = hostile_corpus(tmp_path / "in")
    run = subprocess.run([ASR, "transcribe", "--model", str(memorised.exp / "best.pt"), str(tmp_path / "in")],
                         capture_output=True)
    err = run.stderr.decode("utf-8", "surrogateescape")
    assert run.returncode == 1 and "Traceback" not in err
    # the folder walk takes files by extension: the sub-folder named folder.wav holds none, so only
    # the files fail; every good file still comes out
    assert len(run.stdout.decode("utf-8", "surrogateescape").splitlines()) == len(good)
    assert len(err.splitlines()) == len(fail)  # less folder.wav, plus loop_b.wav (the loop's other end)
