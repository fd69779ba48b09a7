"""Train the package's grapheme-to-phoneme model (asr/models/g2p.pt) on CMUdict, and measure it.

  python tools/train_g2p.py --out asr/models/g2p.pt [--minutes 12] [--report docs/g2p.md]

CMUdict is PocketSphinx's (tools/lexicon.py: 39 phones, no stress). Every 20th word, by a stable
hash, is held out and never trained on; the phone error rate (PER) and word error rate printed at
the end are on those words, each scored against the closest of its CMUdict pronunciations.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import zlib
from pathlib import Path

import jiwer
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lexicon import PHONES, cmudict  # noqa: E402

from asr import checkpoint  # noqa: E402
from asr.g2p import BLANK, G2P, LETTERS, build, encode  # noqa: E402
from asr.model import ModelConfig  # noqa: E402


def held_out(word: str) -> bool:
    return zlib.crc32(word.encode()) % 20 == 0


def fits(word: str, phones: list[str], repeat: int) -> bool:
    return len(phones) + sum(a == b for a, b in zip(phones, phones[1:])) <= len(word) * repeat


def phone_errors(g2p: G2P, words: dict[str, list[list[str]]]) -> tuple[float, float]:
    """PER and word error rate (%) of `g2p` on `words`, against the closest reference of each."""
    guesses = g2p(list(words))
    errors = total = wrong = 0
    for w, refs in words.items():
        hyp = " ".join(guesses.get(w, []))
        best = min(refs, key=lambda r: jiwer.process_words(" ".join(r), hyp or "<none>").wer if hyp else len(r))
        out = jiwer.process_words(" ".join(best), hyp or "<none>")
        errors += out.substitutions + out.deletions + out.insertions
        total += len(best)
        wrong += out.substitutions + out.deletions + out.insertions > 0
    return 100 * errors / total, 100 * wrong / len(words)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--dict", help="a CMUdict file (default: PocketSphinx's)")
    p.add_argument("--hidden", type=int, default=192)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--minutes", type=float, default=12.0, help="wall-time budget of the training")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    torch.manual_seed(args.seed)
    lexicon = {w: ps for w, ps in cmudict(args.dict).items()
               if all(c in LETTERS for c in w) and w.strip("'") and all(set(pr) <= PHONES for pr in ps)}
    test = {w: ps for w, ps in lexicon.items() if held_out(w)}
    train = [(w, ps[0]) for w, ps in lexicon.items() if not held_out(w) and fits(w, ps[0], args.repeat)]
    print(f"{len(lexicon):,} words: {len(train):,} to train on, {len(test):,} held out")
    phones = [BLANK, *sorted(PHONES)]
    index = {ph: i for i, ph in enumerate(phones)}
    model = build(ModelConfig(hidden=args.hidden, layers=args.layers, dropout=0.1, stack=1), len(phones))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-2)
    train.sort(key=lambda x: len(x[0]))  # batches of similar length, in random order
    batches = [train[i:i + args.batch] for i in range(0, len(train), args.batch)]
    total = args.epochs * len(batches)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / 200) * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / total)))))
    start, step = time.monotonic(), 0
    g2p = G2P(model, phones, args.repeat)
    for epoch in range(args.epochs):
        random.Random(args.seed + epoch).shuffle(batches)
        model.train()
        losses = []
        for batch in batches:
            x, lengths = encode([w for w, _ in batch], args.repeat)
            targets = torch.tensor([index[ph] for _, pr in batch for ph in pr])
            target_lengths = torch.tensor([len(pr) for _, pr in batch])
            log_probs, out_lengths = model(x, lengths)
            loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            schedule.step()
            step += 1
            losses.append(loss.item())
        minutes = (time.monotonic() - start) / 60
        sample = dict(list(test.items())[:2000])
        per, wer = phone_errors(g2p, sample)
        print(f"epoch {epoch + 1}: loss {sum(losses) / len(losses):.3f}, held-out sample PER {per:.2f}% "
              f"WER {wer:.1f}% ({minutes:.1f} min)", flush=True)
        checkpoint.save(args.out + ".partial", g2p.payload())
        if minutes * (epoch + 2) / (epoch + 1) > args.minutes:
            print(f"stopping: another epoch would pass {args.minutes:g} minutes")
            break
    model.eval()
    Path(args.out + ".partial").replace(args.out)
    g2p = G2P.load(args.out)  # as users get it: fp16 weights
    per, wer = phone_errors(g2p, test)
    size = Path(args.out).stat().st_size
    print(f"{args.out}: {size / 1e6:.1f} MB; {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"held-out CMUdict words ({len(test):,}): PER {per:.2f}%, WER {wer:.2f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
