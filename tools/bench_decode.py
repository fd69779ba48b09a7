"""Beam search with an n-gram LM: asr's decoder (flashlight, via torchaudio) against pyctcdecode,
on the same emissions and the same ARPA file, at the same beam size, in one run.

    pip install pyctcdecode kenlm      # for this benchmark only; not a dependency of asr
    python tools/bench_decode.py --model exp/lj/best.pt --dev data/lj/dev.jsonl \
        --test data/lj/test.jsonl --lm exp/lj/lm4.arpa

The acoustic model runs once per manifest. Each decoder's LM weight and word score are tuned on
the dev set over a small grid (their scales differ: flashlight's LM scores are log10 scaled by
the weight, pyctcdecode's alpha/beta its own), then each decodes the test set; times are for
the search alone, one utterance at a time, one process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from asr import audio  # noqa: E402
from asr.checkpoint import load_recognizer  # noqa: E402
from asr.data import read_manifest  # noqa: E402
from asr.decode import BeamConfig, BeamDecoder, greedy  # noqa: E402
from asr.score import score  # noqa: E402
from asr.text import normalize  # noqa: E402
from asr.transcribe import emissions  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--dev", required=True)
    parser.add_argument("--test", required=True)
    parser.add_argument("--lm", required=True, help="ARPA file")
    parser.add_argument("--beam", type=int, default=50)
    args = parser.parse_args()
    try:
        import pyctcdecode
    except ImportError:
        raise SystemExit("bench_decode: needs pyctcdecode and kenlm: pip install pyctcdecode kenlm") from None

    recognizer = load_recognizer(args.model)
    dev, test = _emissions(recognizer, args.dev), _emissions(recognizer, args.test)
    vocab = recognizer.vocab

    ours = BeamDecoder(vocab, BeamConfig(beam_size=args.beam, lm=args.lm))

    def ours_with(a, b):
        d = ours.with_weights(a, b)
        return lambda lp: d(lp[None], torch.tensor([len(lp)]))[0].text

    # pyctcdecode: blank is "", the word boundary " "; its LM is the same ARPA file through kenlm.
    labels = ["" if u == vocab.units[vocab.blank] else " " if u == "|" else u for u in vocab.units]
    theirs = {}

    def theirs_with(a, b):
        if (a, b) not in theirs:
            theirs[(a, b)] = pyctcdecode.build_ctcdecoder(labels, kenlm_model_path=args.lm, alpha=a, beta=b)
        d = theirs[(a, b)]
        return lambda lp: " ".join(d.decode(lp.numpy(), beam_width=args.beam).split())

    greedy_text = lambda lp: greedy(lp[None], torch.tensor([len(lp)]), vocab)[0].text  # noqa: E731
    rows = [("greedy", "-", *_run(greedy_text, test))]
    for name, make, grid in (
        ("asr (flashlight)", ours_with, [(a, b) for a in (0.5, 1.0, 1.5, 2.0) for b in (-4.0, -2.0, 0.0)]),
        ("pyctcdecode", theirs_with, [(a, b) for a in (0.5, 1.0, 1.5) for b in (-1.0, 0.0, 1.5, 3.0)]),
    ):
        best = min(grid, key=lambda ab: _run(make(*ab), dev)[1].wer)
        rows.append((name, f"{best[0]:g}, {best[1]:g}", *_run(make(*best), test)))

    print(f"{len(test[0])} test utterances; beam {args.beam}; LM {args.lm}; weights tuned on {len(dev[0])} dev utterances")
    print("| decoder | LM weight, word score (dev-tuned) | ms per utterance | test WER | test CER |")
    print("|---|---|---:|---:|---:|")
    for name, weights, ms, s in rows:
        print(f"| {name} | {weights} | {ms:.1f} | {s.wer:.2f}% | {s.cer:.2f}% |")


def _emissions(recognizer, manifest):
    utts = read_manifest(manifest)
    out = []
    for u in utts:
        log_probs, lengths = emissions(recognizer, [torch.from_numpy(audio.load(u.audio_filepath))])
        out.append(log_probs[0, : lengths[0]].contiguous())
    return out, [normalize(u.text) for u in utts]


def _run(decode, data):
    items, refs = data
    start = time.perf_counter()
    hyps = [decode(lp) for lp in items]
    return (time.perf_counter() - start) * 1000 / len(items), score(refs, hyps)


if __name__ == "__main__":
    main()
