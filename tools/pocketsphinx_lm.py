"""PocketSphinx's generic US-English trigram as an ARPA file, for a general-English LM.

    pip install pocketsphinx            # 5.x ships en-us.lm.bin: 72,547 words, BSD-style licence
    python tools/pocketsphinx_lm.py --out exp/default/en-us.arpa.gz
    python tools/pocketsphinx_lm.py IN.lm.bin OUT.arpa[.gz]

The shipped converters cannot do it: `NGramModel.write(..., "arpa")` crashes in the trigrams and
Debian's `sphinx_lm_convert` aborts (the header counts 6 more bigrams than the file stores), so
this reads the binary itself. Checked against pocketsphinx's own scores (`NGramModel.prob`) on
12,000 n-grams, seen and backed off: within 4.4e-5 in log10, one of its integer log units. The
words stay as the model has them (lower case, some with '.' or '-'); `asr lm mix` brings them
to the acoustic model's units.

Binary layout (all little-endian), as written by sphinxbase's trie LM:
  * b"Trie Language Model" (19 bytes, no NUL), uint8 order N,
    uint32 count[N]  (header counts; sizes below are computed from them).
  * if N > 1: int32 (ignored, always 1), then the quantiser tables, float32:
    for each middle order 2..N-1 a 65536-entry prob table and a 65536-entry
    backoff table, then a 65536-entry prob table for order N.
  * count[0]+1 unigram records {float32 prob, float32 backoff, uint32 next};
    "next" indexes the bigram array, the extra last record is a sentinel.
  * the n-gram arrays, bit-packed LSB-first, one after the other, each
    ((count[n]+1) * bits + 7) // 8 + 8 bytes long:
      middle order n: word (B bits), backoff code (16), prob code (16),
                      next (bits for count[n+1]) -> index into order n+1
      highest order:  word (B bits), prob code (16)
    with B = bit length of count[0].  The trie is reversed (KenLM style):
    below unigram w sit the entries for the previous word v (bigram "v w"),
    below those the word before v (trigram "u v w"), each run sorted by id.
  * int32 byte length, then the vocabulary as NUL-terminated strings in
    word-id order.
All scores are stored in the library's log base 1.0001 (natural log / ln
1.0001); multiplying by log10(1.0001) gives log10 values for ARPA.
The n-gram counts in the header may exceed the entries actually stored; the
real counts come from the sentinel "next" pointers and are what we write.
"""
import argparse
import gzip
import math
import os
import struct
import sys

import numpy as np

MAGIC = b"Trie Language Model"
QBITS = 16                       # prob and backoff codes are 16 bits each
QSIZE = 1 << QBITS
LOG10_BASE = math.log10(1.0001)  # sphinx logmath base -> log10


class FormatError(Exception):
    pass


def to_log10(a):
    """stored float32 scores (log base 1.0001) -> float64 log10"""
    return a.astype(np.float64) * LOG10_BASE


def bit_length(x):
    return int(x).bit_length()   # same as sphinx's bitarr_required_bits()


def read_fields(buf, n, total_bits, fields):
    """Decode n bit-packed records of total_bits bits each.

    fields: list of (bit offset inside a record, width in bits); returns
    one uint64 array per field.  Each value is read from an 8-byte
    little-endian window starting at its byte, then shifted and masked.
    """
    raw = np.concatenate([np.frombuffer(buf, np.uint8), np.zeros(8, np.uint8)])
    windows = np.lib.stride_tricks.as_strided(raw, (len(raw) - 7, 8), (1, 1))
    start = np.arange(n, dtype=np.uint64) * np.uint64(total_bits)
    out = []
    for off, width in fields:
        pos = start + np.uint64(off)
        val = np.ascontiguousarray(windows[pos >> np.uint64(3)]).view("<u8")[:, 0]
        val = (val >> (pos & np.uint64(7))) & np.uint64((1 << width) - 1)
        out.append(val)
    return out


def read_trie(path):
    """Return (words, levels): levels[k] is a dict for order k+1 holding
    'word' (id of the word added at this level), 'parent' (index into the
    level below), 'prob' and, except for the highest order, 'bo' (log10)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:len(MAGIC)] != MAGIC:
        if data[4:20] == b"Darpa Trigram LM":
            raise FormatError("an old DMP model, not a trie model")
        raise FormatError(f"not a sphinx trie LM (no {MAGIC!r} header)")
    pos = len(MAGIC)
    order = data[pos]
    pos += 1
    if not 1 <= order <= 6:
        raise FormatError("implausible LM order %d" % order)
    counts = struct.unpack_from("<%dI" % order, data, pos)
    pos += 4 * order

    tables = []                                  # per order >= 2: (prob, bo)
    if order > 1:
        pos += 4                                 # obsolete quantisation type
        for n in range(2, order + 1):
            prob = np.frombuffer(data, "<f4", QSIZE, pos)
            pos += 4 * QSIZE
            bo = None
            if n < order:
                bo = np.frombuffer(data, "<f4", QSIZE, pos)
                pos += 4 * QSIZE
            tables.append((prob, bo))

    ug = np.frombuffer(data, [("prob", "<f4"), ("bo", "<f4"), ("next", "<u4")],
                       counts[0] + 1, pos)
    pos += 12 * (counts[0] + 1)
    levels = [dict(word=np.arange(counts[0]), parent=None,
                   prob=to_log10(ug["prob"][:-1]), bo=to_log10(ug["bo"][:-1]))]
    next_ptr = ug["next"].astype(np.int64)      # child ranges of the level below

    word_bits = bit_length(counts[0])
    for n in range(2, order + 1):
        middle = n < order
        ptr_bits = bit_length(counts[n]) if middle else 0
        total = word_bits + (2 * QBITS if middle else QBITS) + ptr_bits
        size = ((counts[n - 1] + 1) * total + 7) // 8 + 8
        if pos + size > len(data):
            raise FormatError("file truncated in the %d-gram array" % n)
        used = int(next_ptr[-1])                # real number of n-grams
        if used > counts[n - 1] or np.any(np.diff(next_ptr) < 0):
            raise FormatError("corrupt next pointers into the %d-gram array" % n)
        if used != counts[n - 1]:
            print("note: header says %d %d-grams, %d are stored; writing %d"
                  % (counts[n - 1], n, used, used), file=sys.stderr)
        fields = [(0, word_bits), (word_bits, QBITS)]
        if middle:                               # backoff code, prob code, next
            fields += [(word_bits + QBITS, QBITS), (word_bits + 2 * QBITS, ptr_bits)]
        # read one record more than used: its 'next' ends the last range
        vals = read_fields(data[pos:pos + size], used + 1, total, fields)
        pos += size
        prob_t, bo_t = tables[n - 2]
        lev = dict(word=vals[0][:used].astype(np.int64),
                   parent=np.repeat(np.arange(len(next_ptr) - 1), np.diff(next_ptr)))
        if middle:
            lev["bo"] = to_log10(bo_t[vals[1][:used]])
            lev["prob"] = to_log10(prob_t[vals[2][:used]])
            next_ptr = vals[3].astype(np.int64)
        else:
            lev["prob"] = to_log10(prob_t[vals[1][:used]])
        if lev["word"].size and lev["word"].max() >= counts[0]:
            raise FormatError("word id out of range in the %d-gram array" % n)
        levels.append(lev)

    if pos + 4 > len(data):
        raise FormatError("file truncated before the vocabulary")
    nbytes = struct.unpack_from("<i", data, pos)[0]
    words = data[pos + 4:pos + 4 + nbytes].split(b"\0")[:-1]
    if len(words) != counts[0]:
        raise FormatError("vocabulary has %d words, header says %d"
                          % (len(words), counts[0]))
    return [w.decode("utf-8", "replace") for w in words], levels


def write_arpa(words, levels, out, digits=6):
    opener = gzip.open if out.endswith(".gz") else open
    fmt = "%%.%df" % digits
    words = np.array(words, dtype=object)
    with opener(out, "wt", encoding="utf-8", newline="\n") as f:
        f.write("\\data\\\n")
        for n, lev in enumerate(levels, 1):
            f.write("ngram %d=%d\n" % (n, len(lev["word"])))
        for n, lev in enumerate(levels, 1):
            # Rebuild each n-gram w1..wn: the entry at level n holds w1, its
            # parent at level n-1 holds w2, ..., the unigram holds wn.
            ids = [lev["word"]]
            idx = lev["parent"]
            for k in range(n - 2, -1, -1):
                ids.append(levels[k]["word"][idx])
                idx = levels[k]["parent"][idx] if k else None
            order = np.lexsort(ids[::-1])        # sort by w1, then w2, ...
            text = [" ".join(t) for t in zip(*(words[i[order]] for i in ids))]
            probs = [fmt % p for p in lev["prob"][order]]
            f.write("\n\\%d-grams:\n" % n)
            if "bo" in lev and n < len(levels):
                bos = [fmt % b for b in lev["bo"][order]]
                f.writelines("%s\t%s\t%s\n" % t for t in zip(probs, text, bos))
            else:
                f.writelines("%s\t%s\n" % t for t in zip(probs, text))
        f.write("\n\\end\\\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lm_bin", nargs="?", help="a sphinx trie LM (default: the installed pocketsphinx's en-us.lm.bin)")
    ap.add_argument("arpa", nargs="?", help="output ARPA file (.gz to compress)")
    ap.add_argument("--out", help="output ARPA file, with the installed model as input")
    ap.add_argument("--digits", type=int, default=6, help="decimals written for log10 values (default 6)")
    args = ap.parse_args()
    if args.out and args.arpa:
        sys.exit("pocketsphinx_lm: give the output once: IN.lm.bin OUT.arpa, or [IN.lm.bin] --out OUT.arpa")
    out = args.out or args.arpa
    source = args.lm_bin
    if not out:
        sys.exit("pocketsphinx_lm: give --out OUT.arpa.gz (or IN.lm.bin OUT.arpa)")
    if source is None:
        try:
            import pocketsphinx
        except ImportError:
            sys.exit("pocketsphinx_lm: pocketsphinx is not installed: pip install pocketsphinx")
        source = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us.lm.bin")
    try:
        words, levels = read_trie(source)
    except (FormatError, OSError) as e:
        sys.exit(f"pocketsphinx_lm: {source}: {e}")
    except ValueError as e:  # numpy reading past the end of a cut-off file
        sys.exit(f"pocketsphinx_lm: {source}: truncated or corrupt ({e})")
    tmp = out + ".tmp" + (".gz" if out.endswith(".gz") else "")
    write_arpa(words, levels, tmp, args.digits)
    os.replace(tmp, out)
    print(f"{out}: " + ", ".join(f"{n}-grams {len(lev['word']):,}" for n, lev in enumerate(levels, 1)))


if __name__ == "__main__":
    main()
