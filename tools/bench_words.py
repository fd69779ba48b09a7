"""Your words at decoding (`--words`), measured on real speech.

    python tools/bench_words.py --manifests data/default/{libri,cathy,lj}_test.jsonl [--model M.pt]
                                [--top 20000] [--boosts 0 1 2]

Every word of the manifests' transcripts that is not among the model's LM's `--top` likeliest
unigrams is removed from its LM (each n-gram holding one) and from its lexicon. Each set is then
decoded with the model's own decoding (a) with the full LM, (b) with the words removed, and (c)
removed and given back as a word list of spellings only (`load_model(words=)`), so that their
pronunciations come from the G2P, once per `--boost`. Recovery is the share of the WER lost from
(a) to (b) that (c) wins back. Also the G2P's phone error rate on the removed words, against
the pronunciations the lexicon had for them.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gzip
import re
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--manifests", nargs="+", required=True)
    parser.add_argument("--model", help="default: the model inside the package")
    parser.add_argument("--top", type=int, default=20000, help="the LM's likeliest unigrams kept")
    parser.add_argument("--boosts", type=float, nargs="+", default=[1.0], help="--word-boost values for (c)")
    args = parser.parse_args()

    from asr.checkpoint import load_recognizer
    from asr.data import read_manifest
    from asr.decode import BeamDecoder, arpa_unigrams
    from asr.g2p import G2P
    from asr.score import score
    from asr.text import normalize
    from asr.transcribe import cpus, decoder_for, evaluate, read_words

    recognizer = load_recognizer(args.model)
    full = decoder_for(recognizer, workers=cpus())
    if full is None or not full.config.lm:
        print(f"{args.model or 'the packaged model'}: no LM of its own to remove words from", file=sys.stderr)
        return 2
    vocab = recognizer.vocab
    unigrams = arpa_unigrams(full.config.lm)
    kept = set(sorted(unigrams, key=lambda w: -unigrams[w])[:args.top])
    print(f"decoding: {full.config.describe()}; the LM's {len(unigrams):,} words, its {args.top:,} likeliest kept")

    with tempfile.TemporaryDirectory(prefix="bench-words-") as tmp:
        texts = {m: [normalize(u.text).split() for u in read_manifest(m)] for m in args.manifests}
        removed = sorted({w for words in texts.values() for s in words for w in s if w not in kept})
        start = time.perf_counter()
        reduced_lm = _without(full.config.lm, set(removed), Path(tmp) / "reduced.arpa")
        print(f"{len(removed)} words removed from the LM ({time.perf_counter() - start:.0f} s) and the lexicon")
        reduced_vocab = copy.copy(vocab)
        if vocab.pronunciations:
            reduced_vocab.pronunciations = {w: p for w, p in vocab.pronunciations.items() if w not in set(removed)}
            said = G2P.load()(removed)
            truth = [(vocab.pronunciations[w][0], said.get(w, [])) for w in removed if w in vocab.pronunciations]
            errors = sum(sum(score([" ".join(r)], [" ".join(h)])[2:5]) for r, h in truth)  # S + D + I
            print(f"G2P phone error rate on the {len(truth)} removed words the lexicon pronounced: "
                  f"{100 * errors / sum(len(r) for r, _ in truth):.2f}%")
        config = dataclasses.replace(full.config, lm=str(reduced_lm))
        reduced = BeamDecoder(reduced_vocab, config)
        reduced_recognizer = recognizer._replace(vocab=reduced_vocab)
        given, problems = read_words(reduced_vocab, removed, "removed words")
        for p in problems:
            print(f"  not given back: {p}")
        boosted = {b: BeamDecoder(reduced_vocab, config, given, b) for b in args.boosts}

        print("\n| set | words removed (tokens) | (a) full LM | (b) removed | "
              + " | ".join(f"(c) given back, boost {b:g} | recovered" for b in args.boosts) + " |")
        print("|---|---:|---:|---:|" + "---:|---:|" * len(args.boosts))
        for m in args.manifests:
            gone = sum(w in set(removed) for s in texts[m] for w in s)
            a = evaluate(recognizer, m, decoder=full).score.wer
            b = evaluate(reduced_recognizer, m, decoder=reduced).score.wer
            cells = []
            for boost, decoder in boosted.items():
                c = evaluate(reduced_recognizer, m, decoder=decoder).score.wer
                cells.append(f"{c:.2f} | {100 * (b - c) / (b - a):.0f}%" if b > a else f"{c:.2f} | n/a")
            print(f"| {m} | {gone} of {sum(map(len, texts[m]))} | {a:.2f} | {b:.2f} | " + " | ".join(cells) + " |")
    return 0


def _without(lm: str, words: set[str], out: Path) -> Path:
    """The ARPA LM `lm` without any n-gram holding one of `words`, its counts made to agree."""
    opener = gzip.open if lm.endswith(".gz") else open
    sections: list[list[str]] = []
    with opener(lm, "rt", encoding="utf-8") as f:
        for line in f:
            if re.fullmatch(r"\\\d+-grams:\n", line):
                sections.append([])
            elif line.startswith("\\end\\"):
                break
            elif sections:
                parts = line.rstrip("\n").split("\t")
                if len(parts) >= 2 and not words.intersection(parts[1].split()):
                    sections[-1].append(line)
    with open(out, "w", encoding="utf-8") as f:
        f.write("\\data\\\n" + "".join(f"ngram {n}={len(s)}\n" for n, s in enumerate(sections, 1)))
        for n, s in enumerate(sections, 1):
            f.write(f"\n\\{n}-grams:\n" + "".join(s))
        f.write("\n\\end\\\n")
    return out


if __name__ == "__main__":
    sys.exit(main())
