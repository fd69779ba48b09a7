"""Audio input: any file soundfile reads -> mono float32 at 16 kHz.

Every failure becomes an `AudioError` whose message is one line naming the file, so a batch
can report it and carry on.
"""

from __future__ import annotations

import contextlib
import glob
import os
import stat
import sys
from pathlib import Path
from typing import Iterable, Iterator, TextIO

import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16000
# Audio whose loudest sample is under this holds no speech: the quietest real recordings peak tens
# of dB above it (a 16-bit file's last bit is -90 dBFS). Of the 6,909 utterances the default model
# trains and is tested on, the quietest speech peaks at -39 (FSDD's theo), and the only ones under
# -60 are the Asterisk prompts' "N seconds of silence" files, at -84.
SILENT_DBFS = -60.0
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus", ".sph", ".nist")


class AudioError(Exception):
    """A file that cannot be turned into audio. `str()` is one line: 'PATH: problem'."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = str(path)
        self.problem = " ".join(str(problem).split())  # one line, whatever libsndfile said
        super().__init__(f"{self.path}: {self.problem}")

    def __reduce__(self):  # DataLoader workers pickle errors back to the main process
        return AudioError, (self.path, self.problem)


def peak_dbfs(wave: np.ndarray) -> float:
    """The loudest sample in dB below full scale (-inf for digital silence or no samples)."""
    peak = float(np.abs(wave).max()) if len(wave) else 0.0
    return 20 * np.log10(peak) if peak > 0 else -np.inf


def find_audio(inputs: Iterable[str], stdin: TextIO | None = None) -> tuple[list[str], list[str]]:
    """The files a command was pointed at, and one line for each input that named none.

    Each input is a file (taken as given: the loader judges it), a folder (searched recursively
    for files with an audio extension, in sorted order), a glob pattern (`**` too), or `-` for
    more inputs of these kinds read from `stdin`, one per line.
    """
    paths: list[str] = []
    problems: list[str] = []
    for item in inputs:
        if item == "-":
            if stdin is None:
                problems.append("-: no standard input to read paths from")
                continue
            lines = [line.rstrip("\r\n") for line in stdin]
            more, bad = find_audio([line for line in lines if line.strip() and line != "-"])
            paths += more
            problems += bad
        elif os.path.isdir(item):
            found = sorted(str(Path(root) / name) for root, _, names in os.walk(item)
                           for name in names if name.lower().endswith(AUDIO_EXTENSIONS))
            if not found:
                problems.append(f"{item}: a folder with no audio files ({', '.join(AUDIO_EXTENSIONS)})")
            paths += found
        elif not os.path.lexists(item) and any(c in item for c in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                problems.append(f"{item}: no file matches this pattern")
            for match in matches:  # a folder that matches is searched like a folder given
                more, _ = find_audio([match]) if os.path.isdir(match) else ([match], [])
                paths += more
        else:
            paths.append(item)
    return paths, problems


def duration(path: str | os.PathLike) -> float:
    """Length in seconds from the file header, without decoding the samples."""
    info = _open(path, sf.info)
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError(path, "no audio in file (zero length)")
    return info.frames / info.samplerate


def load(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, start: float = 0.0,
         seconds: float | None = None) -> np.ndarray:
    """Read `path` as mono float32 at `sample_rate`, whatever its format, rate and channel count;
    with `start` and `seconds`, only that stretch of it (a segment of a longer recording)."""
    if start or seconds is not None:
        data, rate = _open(path, lambda p: _read_segment(p, start, seconds))
        if data.shape[0] == 0:
            stretch = f"from {start:g} s" + (f" for {seconds:g} s" if seconds is not None else "")
            raise AudioError(path, f"no audio {stretch} (past the end of the file)")
    else:
        data, rate = _open(path, lambda p: sf.read(p, dtype="float32", always_2d=True))
    if data.shape[0] == 0:
        raise AudioError(path, "no audio in file (zero length)")
    if rate <= 0:
        raise AudioError(path, f"impossible sample rate {rate} in its header")
    return _resample(path, _mono(path, data), rate, sample_rate)


def _resample(name, mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    if rate != sample_rate:
        # Exactly librosa.resample(res_type="soxr_hq") (tests/test_audio.py checks), without the
        # ~2 s that importing librosa adds to every command's start-up.
        mono = soxr.resample(mono, rate, sample_rate, quality="HQ")
        if len(mono) == 0:  # e.g. 1 sample at 48 kHz: nothing left at 16 kHz
            raise AudioError(name, f"no audio at {sample_rate} Hz (too short: under one sample once resampled)")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _read_segment(path: bytes, start: float, seconds: float | None):
    with sf.SoundFile(path) as f:
        first = round(start * f.samplerate)
        count = -1 if seconds is None else round(seconds * f.samplerate)
        if f.samplerate <= 0 or first >= f.frames:
            return np.zeros((0, f.channels), np.float32), f.samplerate
        f.seek(first)
        return f.read(count, dtype="float32", always_2d=True), f.samplerate


def from_array(samples, sample_rate: int, name: str = "array") -> np.ndarray:
    """Audio already in memory (a numpy array or a torch tensor; 1-D, or 2-D with the channels on
    either axis; float in [-1, 1] or integer PCM) as mono float32 at 16 kHz, like `load`."""
    if hasattr(samples, "detach"):  # a torch tensor, on any device
        samples = samples.detach().cpu().numpy()
    try:
        data = np.asarray(samples)
        if data.ndim == 2 and data.shape[0] < data.shape[1] and data.shape[0] <= 8:
            data = data.T  # (channels, samples), as torch keeps audio
        if data.ndim == 1:
            data = data[:, None]
        if data.ndim != 2 or not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
            raise ValueError(f"expected 1-D or 2-D numbers, got shape {data.shape} of {data.dtype}")
    except (TypeError, ValueError) as e:
        raise AudioError(name, f"not audio samples ({e})") from None
    if not isinstance(sample_rate, (int, np.integer)) or isinstance(sample_rate, bool) or sample_rate <= 0:
        raise AudioError(name, f"sample_rate must be a positive whole number of Hz, got {sample_rate!r}")
    if data.shape[0] == 0:
        raise AudioError(name, "no audio (zero length)")
    if np.issubdtype(data.dtype, np.integer):  # PCM: full scale is the type's range
        info = np.iinfo(data.dtype)
        silence = 0 if info.min else info.max // 2 + 1  # unsigned PCM (8-bit): silence is mid-range
        data = (data.astype(np.float64) - silence) / (-info.min or silence)
    mono = _mono(name, data.astype(np.float32, copy=False))
    return _resample(name, mono, int(sample_rate), SAMPLE_RATE)


def stream(path: str | os.PathLike, block_seconds: float = 10.0, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """`path` as consecutive mono float32 blocks at `sample_rate`, never the whole file in memory:
    what long recordings are read with. The blocks joined equal `load(path)` up to the resampler's
    rounding (a streaming resampler, so no seams at block edges)."""
    f = _open(path, sf.SoundFile)
    with f:
        if f.frames == 0:
            raise AudioError(path, "no audio in file (zero length)")
        if f.samplerate <= 0:
            raise AudioError(path, f"impossible sample rate {f.samplerate} in its header")
        resampler = None if f.samplerate == sample_rate else soxr.ResampleStream(
            f.samplerate, sample_rate, 1, dtype="float32", quality="HQ")
        frames = max(1, round(block_seconds * f.samplerate))
        yielded = False
        while True:
            try:
                with quiet_stderr():
                    data = f.read(frames, dtype="float32", always_2d=True)
            except (sf.SoundFileError, RuntimeError, ValueError, OSError) as e:
                raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
            last = len(data) < frames
            mono = _mono(path, data)
            if resampler is not None:
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
            if len(mono):
                yielded = True
                yield np.ascontiguousarray(mono, dtype=np.float32)
            if last:
                if not yielded:  # a header that promised frames the file does not hold
                    raise AudioError(path, "no audio in file (zero length)")
                return


def _mono(path, data: np.ndarray) -> np.ndarray:
    """(frames, channels) -> (frames,): the channels' mean; refused if any sample is not finite."""
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(path, "samples contain NaN or infinity")
    return mono


def change_speed(wave: np.ndarray, factor: float, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Play `factor` times faster (tempo and pitch together, as a tape would): speed perturbation."""
    if factor == 1.0:
        return wave
    return soxr.resample(wave, sample_rate * factor, sample_rate, quality="HQ").astype(np.float32, copy=False)


@contextlib.contextmanager
def quiet_stderr():
    """Silence file descriptor 2, where C libraries write past sys.stderr (libmpg123's notes on
    junk MP3 data, KenLM's progress bar): a user sees our one-line error, not their chatter."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
        with quiet_stderr():
            return reader(os.fsencode(p))
    except sf.LibsndfileError as e:
        # libsndfile says "File does not exist" of junk it took for MP3; the file does exist.
        said = "Format not recognised." if "does not exist" in e.error_string else e.error_string
        raise AudioError(path, f"not a readable audio file ({said})") from None
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError, OSError, EOFError) as e:
        raise AudioError(path, f"cannot decode audio ({type(e).__name__}: {e})") from None
