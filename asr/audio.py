"""Audio input: any file soundfile reads -> mono float32 at 16 kHz.

Every failure becomes an `AudioError` whose message is one line naming the file, so a batch
can report it and carry on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus")


class AudioError(Exception):
    """A file that cannot be turned into audio. `str()` is one line: 'PATH: problem'."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever libsndfile said
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # DataLoader workers pickle errors back to the main process
        return AudioError, (self.path, self.problem)


def duration(path: str | os.PathLike) -> float:
    """Length in seconds from the file header, without decoding the samples."""
    info = _open(path, sf.info)
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(path, "no audio in file (zero length)")
    return info.frames / info.samplerate


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read `path` as mono float32 at `sample_rate`, whatever its format, rate and channel count."""
    data, rate = _open(path, lambda p: sf.read(p, dtype="float32", always_2d=True))
    if data.shape[0] == 0:
        raise AudioError(path, "no audio in file (zero length)")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(path, "samples contain NaN or infinity")
    if rate != sample_rate:
        # Exactly librosa.resample(res_type="soxr_hq") (tests/test_audio.py checks), without the
        # ~2 s that importing librosa adds to every command's start-up.
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def change_speed(wave: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, as a tape would): speed perturbation."""
    if factor == 1.0:
        return wave
    return soxr.resample(wave, sample_rate * factor, sample_rate, quality="HQ").astype(np.float32, copy=False)


def _open(path, reader):
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise AudioError(path, "no such file") from None
    except OSError as e:  # a symlink loop, a name too long, ...
        raise AudioError(path, f"cannot open ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise AudioError(path, "is a directory, not an audio file")
    if not os.access(p, os.R_OK):
        raise AudioError(path, "permission denied")
    if st.st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        # Bytes: soundfile would encode a str path strictly and fail on a non-UTF-8 file name.
        return reader(os.fsencode(p))
    except sf.LibsndfileError as e:
        raise AudioError(path, f"not a readable audio file ({e.error_string})") from None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as e:
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
