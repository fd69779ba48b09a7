"""Would a frame step chosen per utterance by its speaking rate beat one step for all? A measurement
for recipes/default/ablation.md, not a feature: each manifest is decoded at the model's step and at
a shorter one, and the rule "the shorter step where the greedy output at the model's step has more
than RATE units (phones, word ends) per output frame of speech" is scored from those two decodes.

  python tools/step_by_rate.py --model exp/phones_seed1/best.pt --lm exp/phones_seed1/lm.arpa.gz \
      --lm-weight 2 --word-score 0 --hops-ms 10 9 --manifests data/default/dev_tune.jsonl ...
"""

import argparse
from pathlib import Path

from asr.checkpoint import load_recognizer, with_hop
from asr.decode import greedy
from asr.score import score
from asr.transcribe import decoder_for, manifest_emissions

MIN_UNITS = 8  # fewer units than this (a digit, a letter) say too little about a rate


def decode(recognizer, decoder, manifest):
    """Per utterance: (word errors, reference words, units, frames of speech) at this step. The
    units are the greedy output's; its frames of speech run from the first unit to the last."""
    cached, refs = manifest_emissions(recognizer, manifest)
    rows = []
    for log_probs, lengths in cached:
        hyps, units = decoder(log_probs, lengths), greedy(log_probs, lengths, recognizer.vocab)
        spoken = log_probs.argmax(-1) != recognizer.vocab.blank
        for b, hyp in enumerate(hyps):
            frames = spoken[b, : int(lengths[b])].nonzero().flatten()
            span = int(frames[-1] - frames[0]) + 1 if len(frames) else 0
            s = score([refs[len(rows)]], [hyp.text])
            rows.append((s.substitutions + s.deletions + s.insertions, s.words, len(units[b].tokens), span))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--lm", required=True)
    p.add_argument("--lm-weight", type=float, default=2.0)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--hops-ms", type=float, nargs=2, default=[10.0, 9.0], metavar=("MODEL_STEP", "SHORTER"))
    p.add_argument("--rates", type=float, nargs="+", default=[0.38, 0.40, 0.42, 0.44, 0.46])
    p.add_argument("--manifests", nargs="+", required=True)
    args = p.parse_args()
    base = load_recognizer(args.model)
    decoder = decoder_for(base, lm=args.lm, lm_weight=args.lm_weight, word_score=args.word_score,
                          beam=1000, beam_tokens=8, beam_threshold=12)
    slow, fast = args.hops_ms
    print("manifest\t" + f"{slow:g} ms\t{fast:g} ms\t" + "\t".join(f"rate>{r:g}" for r in args.rates))
    for manifest in args.manifests:
        at_slow, at_fast = (decode(with_hop(base, h), decoder, manifest) for h in (slow, fast))
        words = sum(r[1] for r in at_slow)

        def wer(choose):  # choose(i) -> True: utterance i at the shorter step
            return 100 * sum((at_fast if choose(i) else at_slow)[i][0] for i in range(len(at_slow))) / words

        cells = [wer(lambda i: False), wer(lambda i: True)]
        for rate in args.rates:
            cells.append(wer(lambda i: at_slow[i][2] >= MIN_UNITS and at_slow[i][2] / max(1, at_slow[i][3]) > rate))
        print(Path(manifest).stem + "\t" + "\t".join(f"{c:.2f}" for c in cells), flush=True)


if __name__ == "__main__":
    main()
