"""A pronunciation lexicon for a phone model (`train.lexicon`): every word of an LM and of some
manifests, with all of CMUdict's pronunciations (39 phones, no stress marks, the commonest first)
and the 26 letter names ('A.' EY), which AN4's spelt-out letters train on. Words come likeliest
first by the LM (then the rest, then the letter names): without an LM, a phone model says the
first of homophones (K, not CAY).

  python tools/lexicon.py --lm exp/default/lm.arpa --manifests data/default/train_all.jsonl ... --out lexicon.txt

The dictionary is PocketSphinx's CMUdict (134k words), in the `pocketsphinx` package (a dev
dependency). Words it lacks are spelt by flite's letter-to-sound rules (Debian's `flite`: `t2p`),
and reported; a word neither can spell is reported and left out (training leaves out its
utterances, and says so).
"""

from __future__ import annotations

import argparse
import shutil
import string
import subprocess
import sys
from pathlib import Path

from asr.data import parse_manifest
from asr.decode import arpa_unigrams
from asr.text import normalize, read_lexicon

PHONES = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH "
             "UH UW V W Y Z ZH".split())
# flite's phones that CMUdict's set writes otherwise
_FLITE = {"ax": ["AH"], "axr": ["ER"], "el": ["AH", "L"], "em": ["AH", "M"], "en": ["AH", "N"], "nx": ["N"]}


def cmudict(path: str | None = None) -> dict[str, list[list[str]]]:
    """WORD -> its pronunciations, the dictionary's first one first."""
    if path is None:
        import pocketsphinx
        path = Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"
    prons = read_lexicon(Path(path).read_text(encoding="utf-8"), str(path))
    return {w: [[p.rstrip("012") for p in pron] for pron in ps] for w, ps in prons.items()}  # no stress marks


def letter_to_sound(word: str) -> list[str] | None:
    """flite's letter-to-sound rules (Debian's `t2p`) for a word the dictionary lacks."""
    try:
        out = subprocess.run(["t2p", word.lower().replace("'", "")], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    phones = []
    for p in out.split():
        p = p.rstrip("012")
        if p != "pau":
            phones += _FLITE.get(p, [p.upper()])
    return phones if phones and all(p in PHONES for p in phones) else None


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lm", help="an ARPA LM (.arpa or .arpa.gz): its words")
    p.add_argument("--manifests", nargs="*", default=[], help="manifests: the words of their transcripts")
    p.add_argument("--dict", help="a CMUdict file (default: PocketSphinx's)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    if not args.lm and not args.manifests:
        p.error("give --lm, --manifests or both")
    prons = cmudict(args.dict)
    ranks = arpa_unigrams(args.lm) if args.lm else {}
    words = set(ranks)
    for manifest in args.manifests:
        utts, _ = parse_manifest(manifest)
        words.update(w for u in utts for w in normalize(u.text).split())
    missing = sorted(w for w in words if w not in prons)
    if missing and not shutil.which("t2p"):
        print(f"{args.out}: {len(missing)} words are not in CMUdict ({', '.join(missing[:3])}...), and flite's t2p, "
              "which would spell them, is not installed: apt-get install flite", file=sys.stderr)
        return 1
    guessed, unspelt = {}, []
    for w in missing:
        guess = letter_to_sound(w)
        if guess:
            guessed[w] = [guess]
        else:
            unspelt.append(w)
    lexicon = {w: prons[w] for w in words if w in prons} | guessed
    lexicon |= {f"{c}.": prons[f"{c}."] for c in string.ascii_uppercase}  # letter names
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        order = sorted(lexicon, key=lambda w: (w.endswith("."), -ranks.get(w, -1e9), w))
        f.writelines(f"{w} {' '.join(pron)}\n" for w in order for pron in lexicon[w])
    examples = ", ".join(f"{w} {' '.join(guessed[w][0])}" for w in list(guessed)[:3])
    print(f"{args.out}: {len(lexicon):,} words; {len(guessed):,} not in CMUdict spelt by flite's rules"
          f"{' (' + examples + ')' if examples else ''}; {len(unspelt)} left out, neither could spell them"
          f"{': ' + ', '.join(unspelt[:5]) if unspelt else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
