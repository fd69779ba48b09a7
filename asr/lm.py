"""N-gram language models: interpolated modified Kneser-Ney, written as ARPA.

    asr lm build --text corpus.txt --order 4 --out lm.arpa [--lexicon lexicon.txt] [--prune 0 0 1 1]
    asr lm build --text corpus.txt --order 6 --units chars --out chars.arpa
    asr lm mix general.arpa.gz domain.arpa --weights 0.7 0.3 --out mixed.arpa.gz
    asr lm prune mixed.arpa.gz --threshold 1e-8 --out small.arpa.gz
    asr lm perplexity mixed.arpa.gz --text dev.txt test.txt

The text is read a line at a time (plain or .gz) and normalised as transcripts are; only the
n-gram counts are held in memory. Estimation follows Chen & Goodman (1998), as KenLM's lmplz
does: for the highest order, and for n-grams that start with <s>, the counts themselves; below,
continuation counts (how many different words precede the n-gram); three discounts per order from
the counts of counts; lower orders interpolated in, down to a uniform distribution over the
vocabulary (which includes <unk>). In ARPA form each stored probability is the interpolated one
and each backoff weight renormalises what the context leaves to the next order down, so every
context's distribution sums to one (tests/test_lm.py checks, with pruning too).

Units: `words` (a sentence is its words) or `chars` (a sentence is its letters with `|` between
words: the units of the acoustic model, for lexicon-free beam search).
"""

from __future__ import annotations

import gzip
import io
import math
import os
import string
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Iterator, NamedTuple

from asr.text import WORD_BOUNDARY, normalize

BOS, EOS, UNK = "<s>", "</s>", "<unk>"


class LMError(Exception):
    """A corpus or option that cannot make a model; the message names the file or option."""


@dataclass
class NgramModel:
    """An ARPA-style backoff model. `probs[n-1][ngram]` is P(last word | the others) for each
    stored n-gram; `backoffs[n-1][ngram]` the weight for contexts that back off from it."""

    order: int
    probs: list[dict[tuple[str, ...], float]]
    backoffs: list[dict[tuple[str, ...], float]]
    discounts: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def vocabulary(self) -> list[str]:
        return [g[0] for g in self.probs[0]]

    def prob(self, context: Iterable[str], word: str) -> float:
        """P(word | context) by the ARPA rule: the longest stored n-gram, times the backoff weights
        of the contexts given up on the way down. Unknown words are <unk>."""
        context = tuple(context)[-(self.order - 1):] if self.order > 1 else ()
        if (word,) not in self.probs[0]:
            word = UNK
        weight = 1.0
        while True:
            p = self.probs[len(context)].get((*context, word))
            if p is not None:
                return weight * p
            if not context:  # an unknown word in a model without <unk>
                return 0.0
            weight *= self.backoffs[len(context) - 1].get(context, 1.0)
            context = context[1:]

    def write_arpa(self, path: str | os.PathLike) -> None:
        """ARPA text (gzip when the name ends in .gz), written to a temporary name then renamed."""
        path = os.fspath(path)
        tmp = f"{path}.tmp"
        opener = gzip.open if path.endswith(".gz") else open
        try:
            self._write(opener, tmp)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise
        os.replace(tmp, path)

    def _write(self, opener, tmp: str) -> None:
        with opener(tmp, "wt", encoding="utf-8") as f:
            f.write("\n\\data\\\n")
            for n in range(1, self.order + 1):
                f.write(f"ngram {n}={len(self.probs[n - 1])}\n")
            for n in range(1, self.order + 1):
                f.write(f"\n\\{n}-grams:\n")
                backoffs = self.backoffs[n - 1] if n < self.order else {}
                for gram, p in self.probs[n - 1].items():
                    logp = -99.0 if gram == (BOS,) or p <= 0 else math.log10(p)  # ARPA's log of zero
                    line = f"{logp:.7g}\t{' '.join(gram)}"
                    if gram in backoffs:
                        line += f"\t{math.log10(backoffs[gram]) if backoffs[gram] > 0 else -99.0:.7g}"
                    f.write(line + "\n")
            f.write("\n\\end\\\n")


def is_gzip(path: str | os.PathLike) -> bool:
    """Whether a file is gzip, by its first bytes: a recipe may link `lm.arpa` to an `.arpa.gz`."""
    try:
        with open(path, "rb") as f:
            return f.read(2) == b"\x1f\x8b"
    except OSError:
        return os.fspath(path).endswith(".gz")  # the caller's own open reports the error


def read_sentences(paths: Iterable[str | os.PathLike], units: str = "words") -> Iterator[list[str]]:
    """Normalised sentences, a line at a time, from text files (plain or gzip)."""
    if units not in ("words", "chars"):
        raise LMError(f"units must be 'words' or 'chars', got {units!r}")
    for path in paths:
        try:
            raw = gzip.open(path, "rb") if is_gzip(path) else open(path, "rb")
        except OSError as e:
            raise LMError(f"{path}: cannot read ({e.strerror})") from None
        with raw, io.TextIOWrapper(raw, encoding="utf-8", errors="replace") as f:
            try:
                for line in f:
                    words = normalize(line).split()
                    if not words:
                        continue
                    if units == "words":
                        yield words
                    else:
                        yield list(f" {WORD_BOUNDARY} ".join(" ".join(w) for w in words).replace(" ", ""))
            except (OSError, EOFError, gzip.BadGzipFile) as e:
                raise LMError(f"{path}: cannot read ({e})") from None


def build(sentences: Iterable[list[str]], order: int, prune: Iterable[int] = ()) -> NgramModel:
    """Estimate an interpolated modified Kneser-Ney model of `order` from `sentences`.

    `prune[n-1]` (n >= 2): drop n-grams whose (adjusted) count is at most that, unless a longer
    kept n-gram needs them; their probability mass goes to the backoff weights.
    """
    if order < 1:
        raise LMError(f"order must be at least 1, got {order}")
    prune = list(prune) + [0] * order
    counts = _count(sentences, order)
    if not counts[0]:
        raise LMError("no words in the text")
    adjusted = _adjust(counts, order)
    discounts = [_discounts(a) for a in adjusted]
    kept = _prune(adjusted, prune, order)

    vocab_size = len({g[0] for g in adjusted[0]} | {UNK, EOS})
    probs: list[dict] = [dict() for _ in range(order)]
    backoffs: list[dict] = [dict() for _ in range(order)]
    model = NgramModel(order, probs, backoffs, discounts)
    for n in range(1, order + 1):
        by_context = defaultdict(list)
        for gram, a in adjusted[n - 1].items():
            by_context[gram[:-1]].append((gram[-1], a))
        d = discounts[n - 1]
        for context, followers in by_context.items():
            total = sum(a for _, a in followers)
            left = sum(d[min(a, 3) - 1] for _, a in followers) / total  # gamma: the mass given down
            lower = context[1:]
            for word, a in followers:
                gram = (*context, word)
                if gram not in kept[n - 1]:
                    continue
                below = model.prob(lower, word) if n > 1 else 1.0 / vocab_size
                probs[n - 1][gram] = (a - d[min(a, 3) - 1]) / total + left * below
            if n == 1:  # <unk>: only its share of the uniform distribution
                probs[0][(UNK,)] = left / vocab_size
                probs[0][(BOS,)] = 0.0  # never predicted; written as -99
            elif context in kept[n - 2]:  # (a pruned context backs off with weight 1, as ARPA reads it)
                backoffs[n - 2][context] = _backoff(model, context, followers, kept[n - 1], left)
    return model


def read_arpa(path: str | os.PathLike) -> NgramModel:
    """An ARPA file (plain or .gz) as an NgramModel; words as the file writes them."""
    path = os.fspath(path)
    probs: list[dict] = []
    backoffs: list[dict] = []
    n = 0
    try:
        with (gzip.open if is_gzip(path) else open)(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                line = line.strip()
                if not line or line.startswith("ngram ") or line in ("\\data\\", "\\end\\"):
                    continue
                if line.startswith("\\") and line.endswith("-grams:"):
                    n = int(line[1:line.index("-")])
                    if n != len(probs) + 1:
                        raise LMError(f"{path}:{number}: {line} after {len(probs)} sections: ARPA's come in order from 1")
                    probs.append({})
                    backoffs.append({})
                    continue
                fields = line.split()
                if not n or len(fields) not in (n + 1, n + 2):
                    raise LMError(f"{path}:{number}: not an ARPA {n}-gram line: {line[:60]!r}")
                gram = tuple(fields[1:n + 1])
                probs[n - 1][gram] = 10 ** float(fields[0]) if float(fields[0]) > -99 else 0.0
                if len(fields) == n + 2:
                    backoffs[n - 1][gram] = 10 ** float(fields[n + 1])
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, ValueError) as e:
        raise LMError(f"{path}: cannot read as ARPA ({e})") from None
    if not probs or not all(probs):
        raise LMError(f"{path}: no n-grams (not an ARPA file?)")
    return NgramModel(len(probs), probs, backoffs)


def mix(models: list[NgramModel], weights: list[float]) -> NgramModel:
    """Linear interpolation, written back as one backoff model (as SRILM's `ngram -mix-lm`):
    every n-gram any model stores gets the weighted sum of the models' probabilities, and each
    context's backoff weight renormalises what is left. A word outside a model's vocabulary has
    probability 0 there (its <unk> mass stays on <unk>), so the mixture is a distribution over
    the union of the vocabularies."""
    if len(models) != len(weights) or not models or any(w < 0 for w in weights) or not sum(weights):
        raise LMError("mix needs one non-negative weight per model, not all zero")
    models, weights = zip(*[(m, w / sum(weights)) for m, w in zip(models, weights) if w > 0])  # weight 0: left out
    order = max(m.order for m in models)
    mixed = NgramModel(order, [dict() for _ in range(order)], [dict() for _ in range(order)])
    for n in range(1, order + 1):
        for gram in {g for m in models if n <= m.order for g in m.probs[n - 1]}:
            mixed.probs[n - 1][gram] = sum(w * m.prob(gram[:-1], gram[-1])
                                           for m, w in zip(models, weights) if (gram[-1],) in m.probs[0])
    _set_backoffs(mixed)
    return mixed


def adapt(general: NgramModel, texts: Iterable[str | os.PathLike], weight: float, order: int = 4,
          threshold: float = 0.0) -> NgramModel:
    """`general` made to favour a domain: mixed with an `order`-gram of the domain's `texts`
    (`weight` its share), then pruned at `threshold` if one is given. (An LM pruned already, as the
    packaged one, is best not pruned again: at 1e-8 it lost half its bigrams, and decoded a dev
    set a point worse.)"""
    if not 0 < weight < 1:
        raise LMError(f"the domain text's weight must lie between 0 and 1, not {weight:g}")
    mixed = mix([general, build(read_sentences(texts), order)], [1 - weight, weight])
    return prune_entropy(mixed, threshold) if threshold else mixed


def in_units(model: NgramModel) -> tuple[NgramModel, int]:
    """The model in the acoustic model's words: upper case, and only words made of its units
    (letters and the apostrophe); n-grams with any other word ("x-ray", "a.", "1990") are dropped,
    the unigrams rescaled to their old total and the backoff weights made anew, so every context
    is still a distribution. Returns the model and how many words were dropped."""
    keep = {}
    for (word,) in model.probs[0]:
        upper = word if word in (BOS, EOS, UNK) else word.upper()
        if upper in (BOS, EOS, UNK) or (upper and set(upper) <= _WORD_UNITS and upper[0] != "'"):
            keep[word] = upper
    spellings = defaultdict(list)  # "THE": ["the", "The"]
    for word, upper in keep.items():
        spellings[upper].append(word)
    probs = [{} for _ in model.probs]
    for level, new in zip(model.probs, probs):
        for g in level:
            if all(w in keep for w in g):
                gram = tuple(keep[w] for w in g)
                if all(len(spellings[w]) == 1 for w in gram):  # the common case: one spelling of each
                    new[gram] = level[g]
                elif gram not in new:
                    new[gram] = _merged_prob(model, gram, spellings)
    total, kept = (sum(p for g, p in level.items() if g != (BOS,)) for level in (model.probs[0], probs[0]))
    probs[0] = {g: p * total / kept for g, p in probs[0].items()}
    result = NgramModel(model.order, probs, [dict() for _ in range(model.order)])
    _set_backoffs(result)
    return result, len(model.probs[0]) - len(keep)


_WORD_UNITS = set(string.ascii_uppercase + "'")


def _merged_prob(model: NgramModel, gram: tuple[str, ...], spellings: dict[str, list[str]]) -> float:
    """P(gram's word | its context) once spellings that differ in case are one word ("the" and
    "The"): summed over the word's spellings, and averaged over the context's spellings, each
    weighted by its words' unigram probabilities (an estimate of how often that context occurs)."""
    *context, word = gram
    contexts = [()]
    for w in context:
        contexts = [(*c, s) for c in contexts for s in spellings[w]]
    weights = [math.prod(model.probs[0][(w,)] for w in c) for c in contexts]
    total = sum(weights)
    p = [sum(model.prob(c, s) for s in spellings[word]) for c in contexts]
    return sum(w * q for w, q in zip(weights, p)) / total if total > 0 else sum(p) / len(p)


def _set_backoffs(model: NgramModel) -> None:
    """Each context's backoff weight, order by order: the mass its stored followers leave, over
    the mass the next order down gives them (a context with none keeps ARPA's weight 1)."""
    for n in range(2, model.order + 1):
        followers = defaultdict(list)
        for gram in model.probs[n - 1]:
            followers[gram[:-1]].append(gram[-1])
        backoffs = model.backoffs[n - 2]
        backoffs.clear()
        for context, words in followers.items():
            if context not in model.probs[n - 2]:
                continue  # a context no model stores backs off with weight 1, as ARPA reads it
            explicit = sum(model.probs[n - 1][(*context, w)] for w in words)
            below = sum(model.prob(context[1:], w) for w in words)
            backoffs[context] = max(1 - explicit, 0.0) / (1 - below) if below < 1 - 1e-12 else 1.0


def prune_entropy(model: NgramModel, threshold: float) -> NgramModel:
    """Relative-entropy pruning (Stolcke 1998, as SRILM's `ngram -prune`): drop each n-gram (order
    2 and up) whose removal changes the model's distribution by less than `threshold` (the
    Kullback-Leibler divergence it costs, weighted by its context's probability), each judged
    against the unpruned model; then make the backoff weights anew. N-grams that a kept longer one
    needs (its prefix and suffix) stay, as ARPA readers expect."""
    order = model.order
    keep = [set(model.probs[0])] + [set() for _ in range(order - 1)]
    history: dict[tuple[str, ...], float] = {}

    def p_history(h: tuple[str, ...]) -> float:
        if h not in history:  # P(h) by the chain rule, from the sentence start where h has it
            words = list(h[1:]) if h[0] == BOS else list(h)
            context = [BOS] if h[0] == BOS else []
            total = 1.0
            for w in words:
                total *= model.prob(context, w)
                context.append(w)
            history[h] = total
        return history[h]

    needed: set[tuple[str, ...]] = set()
    for n in range(order, 1, -1):
        followers = defaultdict(list)
        for gram in model.probs[n - 1]:
            followers[gram[:-1]].append(gram[-1])
        for h, words in followers.items():
            explicit = sum(model.probs[n - 1][(*h, w)] for w in words)  # S(h)
            lower = sum(model.prob(h[1:], w) for w in words)  # the same words one order down
            alpha = model.backoffs[n - 2].get(h, 1.0)
            left = 1.0 - explicit  # mass P(.|h) gives to words without an n-gram here
            for w in words:
                gram = (*h, w)
                if gram in needed:
                    keep[n - 1].add(gram)
                    continue
                p, p_low = model.probs[n - 1][gram], model.prob(h[1:], w)
                alpha_new = (left + p) / max(1.0 - lower + p_low, 1e-12)
                divergence = -p_history(h) * (p * (math.log(alpha_new * p_low) - math.log(p))
                                              + left * (math.log(alpha_new) - math.log(alpha)))
                if divergence >= threshold:
                    keep[n - 1].add(gram)
        needed = {g for kept in keep[n - 1] for g in (kept[:-1], kept[1:])}
    pruned = NgramModel(order, [{g: p for g, p in level.items() if g in keep[n]} for n, level in enumerate(model.probs)],
                        [dict() for _ in range(order)])
    _set_backoffs(pruned)
    return pruned


class Perplexity(NamedTuple):
    sentences: int
    words: int
    oov: int  # words outside the vocabulary: left out of the perplexity (as SRILM's `ngram -ppl`)
    perplexity: float  # over the in-vocabulary words and each sentence's </s>

    @property
    def oov_rate(self) -> float:
        return self.oov / self.words if self.words else 0.0


def perplexity(model: NgramModel, sentences: Iterable[list[str]]) -> Perplexity:
    vocabulary = set(model.vocabulary)
    n_sentences = words = oov = scored = 0
    log_sum = 0.0
    for sentence in sentences:
        n_sentences += 1
        context = [BOS]
        for word in [*sentence, EOS]:
            words += word != EOS
            if word not in vocabulary:
                oov += 1
                context = [BOS]  # nothing is known to follow an unknown word
                continue
            log_sum += math.log10(max(model.prob(context, word), 1e-99))
            scored += 1
            context.append(word)
    return Perplexity(n_sentences, words, oov, 10 ** (-log_sum / scored) if scored else float("inf"))


def write_lexicon(words: Iterable[str], path: str | os.PathLike) -> int:
    """A line per word (sentence markers left out), spelt in acoustic units: 'HELLO\tH E L L O |'."""
    words = sorted(set(words) - {BOS, EOS, UNK})
    with open(path, "w", encoding="utf-8") as f:
        for w in words:
            f.write(f"{w}\t{' '.join(w)} {WORD_BOUNDARY}\n")
    return len(words)


def _count(sentences: Iterable[list[str]], order: int) -> list[dict[tuple[str, ...], int]]:
    """Raw counts of every n-gram up to `order`, <s> and </s> added; <s> alone is not counted."""
    counts: list[dict] = [defaultdict(int) for _ in range(order)]
    interned: dict[str, str] = {}
    for sentence in sentences:
        tokens = [BOS, *(interned.setdefault(t, t) for t in sentence), EOS]
        for end in range(1, len(tokens)):
            for n in range(1, min(order, end + 1) + 1):
                counts[n - 1][tuple(tokens[end - n + 1:end + 1])] += 1
    return counts


def _adjust(counts, order):
    """Kneser-Ney's adjusted counts: below the top order, the number of distinct words seen
    before an n-gram, except for n-grams that start with <s> (nothing can precede it)."""
    adjusted = [dict(c) for c in counts]
    for n in range(order - 1, 0, -1):  # n-grams of order n from those of order n + 1
        continuation = defaultdict(int)
        for gram in counts[n]:
            continuation[gram[1:]] += 1
        adjusted[n - 1] = {g: (c if g[0] == BOS else continuation[g]) for g, c in counts[n - 1].items()}
    return adjusted


def _discounts(adjusted: dict) -> tuple[float, float, float]:
    """D1, D2, D3+ from the counts of counts (Chen & Goodman's estimates). Tiny corpora lack
    the counts of counts these need; they get the usual fallback 0.5, 1.0, 1.5."""
    t = [0] * 5
    for a in adjusted.values():
        if a <= 4:
            t[a] += 1
    try:
        y = t[1] / (t[1] + 2 * t[2])
        ds = (1 - 2 * y * t[2] / t[1], 2 - 3 * y * t[3] / t[2], 3 - 4 * y * t[4] / t[3])
    except ZeroDivisionError:
        return 0.5, 1.0, 1.5
    if not all(0 < d < k for d, k in zip(ds, (1, 2, 3))):
        return 0.5, 1.0, 1.5
    return ds


def _prune(adjusted, prune, order):
    """The n-grams to keep: above their order's threshold, or the prefix or suffix of a kept
    longer one (ARPA readers look both up). Unigrams are all kept."""
    kept = [set() for _ in range(order)]
    for n in range(order, 0, -1):
        for gram, a in adjusted[n - 1].items():
            if n == 1 or a > prune[n - 1]:
                kept[n - 1].add(gram)
        if n < order:
            for gram in kept[n]:
                kept[n - 1].add(gram[:-1])
                kept[n - 1].add(gram[1:])
    return kept


def _backoff(model, context, followers, kept, left) -> float:
    """The weight that makes P(. | context) sum to one. With nothing pruned it is gamma exactly;
    with pruned followers, their mass is renormalised into it."""
    pruned = [w for w, _ in followers if (*context, w) not in kept]
    if not pruned:
        return left
    explicit = sum(model.probs[len(context)][(*context, w)] for w, _ in followers if (*context, w) in kept)
    below = sum(model.prob(context[1:], w) for w, _ in followers if (*context, w) in kept)
    return (1 - explicit) / (1 - below) if below < 1 - 1e-12 else left
