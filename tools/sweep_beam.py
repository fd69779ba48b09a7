"""Beam search settings against WER and search time, with a model's own LM and LM weights.

    python tools/sweep_beam.py --manifest data/default/dev_tune.jsonl 200 1000:8:12 2000:8:15
    python tools/sweep_beam.py --model exp/default/best.pt --lm exp/default/lm.arpa --lm-weight 1.5 \
        --word-score -1 --manifest data/default/dev_tune.jsonl 50 200 500

Each setting is BEAM[:TOKENS[:THRESHOLD]] (`--beam`, `--beam-tokens`, `--beam-threshold`; a
missing part is the model's own, or asr's default). The acoustic model runs once; each setting
re-runs only the search on the same emissions with the same loaded LM, in `--decode-workers`
processes as `asr evaluate` does, and prints its WER, the search's wall time, and how many
utterances it searched again four times as wide (a beam left with no hypothesis that could end a
word: asr/decode.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr.audio import AudioError  # noqa: E402
from asr.data import ManifestError  # noqa: E402
from asr.decode import BeamConfig  # noqa: E402
from asr.score import score  # noqa: E402
from asr.transcribe import cpus, load_model, manifest_emissions  # noqa: E402


def setting(spec: str) -> dict:
    parts = spec.split(":")
    if not 1 <= len(parts) <= 3:
        raise argparse.ArgumentTypeError(f"{spec}: expected BEAM[:TOKENS[:THRESHOLD]]")
    try:
        chosen = {"beam_size": int(parts[0])}
        if len(parts) > 1:
            chosen["beam_size_token"] = int(parts[1])
        if len(parts) > 2:
            chosen["beam_threshold"] = float(parts[2])
        BeamConfig(**chosen)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{spec}: {e}") from None
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("settings", nargs="+", type=setting, metavar="BEAM[:TOKENS[:THRESHOLD]]")
    parser.add_argument("--manifest", required=True, help="a dev set: choose on it, report the test sets")
    parser.add_argument("--model", help="default: the model inside the package, with its LM")
    parser.add_argument("--lm", help="default: the model's own")
    parser.add_argument("--lm-weight", type=float)
    parser.add_argument("--word-score", type=float)
    parser.add_argument("--decode-workers", type=int, default=cpus())
    args = parser.parse_args()

    model = load_model(args.model, "cpu", lm=args.lm, lm_weight=args.lm_weight, word_score=args.word_score,
                       decode_workers=args.decode_workers)
    if model.decoder is None:
        raise SystemExit(f"sweep_beam: {args.model} has no LM of its own: give --lm")
    try:
        cached, refs = manifest_emissions(model.recognizer, args.manifest, batch_size=16)
    except (ManifestError, AudioError) as e:  # a sweep over part of a dev set would compare the wrong thing
        raise SystemExit(f"sweep_beam: {e}") from None
    base = model.decoder
    config = base.config
    print(f"{args.manifest}: {len(refs)} utterances; --lm-weight {config.lm_weight:g} --word-score {config.word_score:g}; "
          f"{args.decode_workers} decoding processes")
    print("beam\ttokens\tthreshold\tWER\tCER\tsearch s\tsearched again")
    for chosen in args.settings:
        decoder = base.with_config(dataclasses.replace(config, **chosen))
        started = time.perf_counter()
        hyps = [h.text for log_probs, lengths in cached for h in decoder(log_probs, lengths)]
        seconds = time.perf_counter() - started
        s = score(refs, hyps)
        c = decoder.config
        print(f"{c.beam_size}\t{c.beam_size_token}\t{c.beam_threshold:g}\t{s.wer:.2f}\t{s.cer:.2f}\t{seconds:.1f}\t{decoder.searched_again}", flush=True)


if __name__ == "__main__":
    main()
