"""The PocketSphinx peer: Debian's generic US-English model on the utterances of a manifest,
scored exactly as `asr evaluate` scores ours (same normalisation, same WER/CER).

Each file is read as our recogniser reads it (16 kHz mono), written as 16-bit WAV and given to
`pocketsphinx_continuous -infile F`; its hypothesis is normalised like a transcript.

    apt-get install pocketsphinx pocketsphinx-en-us
    python tools/peer_pocketsphinx.py --manifest data/an4/test.jsonl [--report exp/an4/pocketsphinx_test.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from asr import audio
from asr.data import Utterance, load_audio, read_manifest
from asr.score import score
from asr.text import normalize
from asr.transcribe import cpus

COMMAND = "pocketsphinx_continuous"


def recognise(u: Utterance, index: int, folder: Path) -> tuple[str | None, str | None]:
    """(PocketSphinx's normalised transcript, None), or (None, one line naming the file and the
    problem). The caller prints: audio.load silences fd 2 while it decodes, in every thread."""
    path = u.audio_filepath
    try:
        wave = load_audio(u)  # the file, or its segment (a manifest line with an offset)
    except audio.AudioError as e:
        return None, str(e)
    wav = folder / f"{index}.wav"
    sf.write(wav, np.clip(wave, -1, 1), audio.SAMPLE_RATE, subtype="PCM_16")
    run = subprocess.run([COMMAND, "-infile", str(wav), "-logfn", os.devnull], capture_output=True, text=True)
    if run.returncode != 0:
        return None, f"{path}: {COMMAND} failed (exit {run.returncode})"
    return normalize(" ".join(run.stdout.split())), None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--report", type=Path, help="JSON file: each utterance's reference and hypothesis")
    parser.add_argument("--jobs", type=int, default=cpus())
    args = parser.parse_args()
    if shutil.which(COMMAND) is None:
        print(f"peer_pocketsphinx: {COMMAND} not found; install it with: "
              "apt-get install pocketsphinx pocketsphinx-en-us", file=sys.stderr)
        return 1
    utts = read_manifest(args.manifest)
    with tempfile.TemporaryDirectory() as folder, ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda iu: recognise(iu[1], iu[0], Path(folder)), enumerate(utts)))
    failed = [error for _, error in results if error]
    for error in failed:
        print(f"peer_pocketsphinx: {error}", file=sys.stderr)
    # like `asr evaluate`: the score is over the utterances that could be recognised, the others
    # are listed in the report as failed, and the exit status is 1
    utts, hyps = [u for u, (h, _) in zip(utts, results) if h is not None], [h for h, _ in results if h is not None]
    if not utts:
        print("peer_pocketsphinx: no utterance could be recognised", file=sys.stderr)
        return 1
    result = score([normalize(u.text) for u in utts], hyps)  # both sides normalised, as `asr evaluate` does
    if args.report:
        tmp = args.report.with_name(args.report.name + ".tmp")
        tmp.write_text(json.dumps({"score": result._asdict(), "failed": failed, "utterances": [
            {"audio_filepath": u.audio_filepath, "reference": u.text, "hypothesis": h} for u, h in zip(utts, hyps)]},
            indent=1), encoding="utf-8")
        tmp.replace(args.report)
    print(f"PocketSphinx (Debian pocketsphinx-en-us) on {args.manifest}: {result.summary()}"
          + (f"; {len(failed)} failed, not scored" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
