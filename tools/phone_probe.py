"""Probe: does a model that spells words in phones (CMUdict's 39) beat one that spells them in
letters, at the same CPU budget? An experiment, not a feature: it trains with `asr train` on
manifests whose text is already phones, and decodes with `asr tune-lm --lexicon` (words spelt
in phones), so the acoustic model, features and search are asr's own.

  python tools/phone_probe.py convert data/default/an4/train.jsonl --out X/an4.jsonl --letter-names
  python tools/phone_probe.py lexicon exp/default/lm.arpa --out X/lexicon.txt
  python tools/phone_probe.py train --config C --train X/train.jsonl --dev X/dev.jsonl --out EXP ...

The dictionary is PocketSphinx's CMUdict (134k words, no stress marks), in the `pocketsphinx`
package (a dev dependency). Words it lacks are spelt by flite's letter-to-sound rules (Debian's
`flite`: `t2p`) and reported; an utterance with a word neither can spell is left out.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

from asr import text
from asr.lm import BOS, EOS, UNK, read_arpa

PHONES = ("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
          "UH UW V W Y Z ZH").split()


def cmudict(path: str | None = None) -> dict[str, list[list[str]]]:
    """WORD -> its pronunciations, the dictionary's first one first."""
    if path is None:
        import pocketsphinx
        path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    prons: dict[str, list[list[str]]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            word, *phones = line.split()
            word = word.split("(")[0].upper()
            prons.setdefault(word, []).append(phones)
    return prons


# flite's phones that CMUdict's set writes otherwise
_FLITE = {"ax": ["AH"], "axr": ["ER"], "el": ["AH", "L"], "em": ["AH", "M"], "en": ["AH", "N"], "nx": ["N"]}


def letter_to_sound(word: str) -> list[str] | None:
    """flite's letter-to-sound rules (Debian's `t2p`) for a word the dictionary lacks."""
    try:
        out = subprocess.run(["t2p", word.lower()], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    phones = []
    for p in out.split():
        p = p.rstrip("012")
        if p != "pau":
            phones += _FLITE.get(p, [p.upper()])
    return phones if phones and all(p in PHONES for p in phones) else None


def add_guess(word: str, prons) -> bool:
    """Adds flite's spelling of a word the dictionary lacks; False if it has none."""
    guess = letter_to_sound(word.replace("'", ""))
    if guess:
        prons[word] = [guess]
    return guess is not None


def spell(words: list[str], prons, letter_names: bool, guessed: Counter) -> list[str] | None:
    """Phone units with '|' between words; words the dictionary lacks are added to it, spelt by
    flite's rules and counted in `guessed`; None if even those fail."""
    units = []
    for w in words:
        # AN4 spells letters out: "A" is the letter's name (EY), not the article (AH)
        key = w + "." if letter_names and len(w) == 1 and w + "." in prons else w
        if key not in prons:
            if not add_guess(w, prons):
                return None
            guessed[w] += 1
        units += ([text.WORD_BOUNDARY] if units else []) + prons[key][0]
    return units


def convert(args) -> int:
    prons = cmudict(args.dict)
    kept, originals, missing, guessed, dropped = [], [], Counter(), Counter(), 0
    with open(args.manifest, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            words = text.normalize(row["text"]).split()
            units = spell(words, prons, args.letter_names, guessed)
            if units is None:
                dropped += 1
                missing.update(w for w in words if w not in prons)
                continue
            kept.append(json.dumps({**row, "text": " ".join(units)}))
            originals.append(line.rstrip("\n"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text("".join(k + "\n" for k in kept), encoding="utf-8")
    if args.kept:  # the same utterances as words: the letter model's training set, for a fair match
        Path(args.kept).write_text("".join(k + "\n" for k in originals), encoding="utf-8")
    common = ", ".join(f"{w} ({n})" for w, n in missing.most_common(8))
    examples = ", ".join(w + " " + " ".join(prons[w][0]) for w in list(guessed)[:4])
    print(f"{args.out}: {len(kept)} utterances kept, {dropped} left out for {len(missing)} words "
          f"flite could not spell{': ' + common if common else ''}; {len(guessed)} words spelt by flite's "
          f"rules: {examples}")
    return 0


def lexicon(args) -> int:
    prons = cmudict(args.dict)
    unigrams = read_arpa(args.lm).probs[0]
    words = [g[0] for g in unigrams if g[0] not in (BOS, EOS, UNK)]
    guessed = sum(add_guess(w, prons) for w in words if w not in prons)
    spelt = [w for w in words if w in prons]
    # flashlight's lexicon trie keeps at most 6 words per spelling (it says "Trie label number
    # reached limit" and drops the rest, K among KAY, QUAY, CAY...): keep the LM's 6 likeliest
    homophones: dict[tuple, list[str]] = {}
    for w in spelt:
        for p in prons[w]:
            homophones.setdefault(tuple(p), []).append(w)
    lines, dropped = [], 0
    for p, ws in homophones.items():
        ws = sorted(ws, key=lambda w: -unigrams[(w,)])
        dropped += len(ws[6:])
        lines += [f"{w} {' '.join(p)} {text.WORD_BOUNDARY}\n" for w in ws[:6]]
    with open(args.out, "w", encoding="utf-8") as f:
        f.writelines(sorted(lines))
    print(f"{args.out}: {len(spelt):,} of the LM's {len(words):,} words have a pronunciation "
          f"({guessed:,} of them by flite's letter-to-sound rules); {dropped} pronunciations of the "
          f"LM's least likely words left out, the 7th or later of one spelling")
    return 0


def train(argv: list[str]) -> int:
    """`asr train` with phones for units: manifests' text is already units, '|' between words."""
    text.DEFAULT_UNITS[:] = [text.BLANK, text.WORD_BOUNDARY, *PHONES]
    text.Vocabulary.encode = lambda self, t: [self.index[u] for u in t.split()]
    text.Vocabulary.decode = lambda self, ids: " ".join(self.units[i] for i in ids if i != self.blank)
    from asr.cli import main
    return main(["train", *argv])


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "train":
        return train(sys.argv[2:])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="a manifest's transcripts as phones")
    c.add_argument("manifest")
    c.add_argument("--out", required=True)
    c.add_argument("--kept", help="also write the kept utterances, transcripts unchanged, here")
    c.add_argument("--letter-names", action="store_true", help="one-letter words are spelled-out letters")
    c.add_argument("--dict", help="a CMUdict file (default: PocketSphinx's)")
    c.set_defaults(run=convert)
    x = sub.add_parser("lexicon", help="the LM's words spelt in phones, every pronunciation")
    x.add_argument("lm")
    x.add_argument("--out", required=True)
    x.add_argument("--dict", help="a CMUdict file (default: PocketSphinx's)")
    x.set_defaults(run=lexicon)
    args = p.parse_args()
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
