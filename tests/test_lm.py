import gzip
import math
import random

import pytest

from asr.lm import BOS, EOS, UNK, LMError, build, mix, read_arpa, read_sentences, write_lexicon

CORPUS = [
    "the cat sat on the mat",
    "the dog sat on the log",
    "a cat and a dog",
    "the cat ate the rat",
    "on the mat the cat sat",
    "the dog ate",
    "a rat",
]


def _sentences(lines=CORPUS):
    return [line.upper().split() for line in lines]


def _contexts(model):
    """Every context the model can be asked about: each stored n-gram short of the top order,
    the empty one, and <s>-led ones."""
    yield ()
    for n in range(1, model.order):
        for gram in model.probs[n - 1]:
            if gram != (UNK,) and EOS not in gram:
                yield gram


@pytest.mark.parametrize("order", [1, 2, 3, 4])
@pytest.mark.parametrize("prune", [(), (0, 1, 1, 1)])
def test_every_context_is_a_distribution(order, prune):
    model = build(_sentences(), order, prune)
    words = [w for w in model.vocabulary if w != BOS]
    assert UNK in words and EOS in words
    for context in _contexts(model):
        total = sum(model.prob(context, w) for w in words)
        assert total == pytest.approx(1.0, abs=1e-9), context
        assert all(model.prob(context, w) > 0 for w in words)


def test_pruning_drops_rare_ngrams_and_keeps_what_longer_ones_need():
    full, pruned = build(_sentences(), 3), build(_sentences(), 3, prune=(0, 1, 1))
    assert len(pruned.probs[2]) < len(full.probs[2]) and len(pruned.probs[1]) < len(full.probs[1])
    for n in (2, 3):
        for gram in pruned.probs[n - 1]:  # what ARPA readers look up: prefix and suffix
            assert gram[:-1] in pruned.probs[n - 2] and gram[1:] in pruned.probs[n - 2], gram
    for n in (1, 2):
        assert set(pruned.backoffs[n - 1]) <= set(pruned.probs[n - 1])


def test_kneser_ney_prefers_words_seen_after_many_others():
    # FRANCISCO is frequent but only ever follows SAN; GLASSES follows many words.
    lines = ["san francisco"] * 6 + [f"{w} glasses" for w in ("red", "blue", "my", "his", "old", "new")]
    model = build(_sentences(lines), 2)
    assert model.prob(["UNSEEN"], "GLASSES") > model.prob(["UNSEEN"], "FRANCISCO")
    assert model.prob(["SAN"], "FRANCISCO") > 0.5


def test_discounts_come_from_the_counts_of_counts():
    rng = random.Random(0)
    words = [f"W{int(rng.paretovariate(1.1))}" for _ in range(20000)]
    sentences = [words[i:i + 12] for i in range(0, len(words), 12)]
    model = build(sentences, 3)
    for d1, d2, d3 in model.discounts:
        assert 0 < d1 < 1 and 0 < d2 < 2 and 0 < d3 < 3 and (d1, d2, d3) != (0.5, 1.0, 1.5)


def test_arpa_file_reads_back_as_the_same_model(tmp_path):
    model = build(_sentences(), 3, prune=(0, 0, 1))
    for name in ("lm.arpa", "lm.arpa.gz"):
        model.write_arpa(tmp_path / name)
        opener = gzip.open if name.endswith(".gz") else open
        with opener(tmp_path / name, "rt", encoding="utf-8") as f:
            text = f.read()
        sections = _parse_arpa(text)
        for n in range(1, 4):
            assert f"ngram {n}={len(model.probs[n - 1])}" in text
            for gram, (logp, backoff) in sections[n].items():
                if gram != (BOS,):
                    assert logp == pytest.approx(math.log10(model.probs[n - 1][gram]), abs=1e-6)
                if backoff is not None:
                    assert backoff == pytest.approx(math.log10(model.backoffs[n - 1][gram]), abs=1e-6)
        assert sections[1][(BOS,)][0] == -99


def _parse_arpa(text):
    sections, n = {}, 0
    for line in text.splitlines():
        if line.startswith("\\") and line.endswith("-grams:"):
            n = int(line[1:line.index("-")])
            sections[n] = {}
        elif n and line.strip() and not line.startswith("\\"):
            parts = line.split("\t")
            sections[n][tuple(parts[1].split())] = (float(parts[0]), float(parts[2]) if len(parts) > 2 else None)
    return sections


def test_flashlight_scores_agree_with_the_model(tmp_path):
    from flashlight.lib.text.decoder.kenlm import KenLM
    from flashlight.lib.text.dictionary import Dictionary

    model = build(_sentences(), 3, prune=(0, 0, 1))
    model.write_arpa(tmp_path / "lm.arpa")
    words = [w for w in model.vocabulary if w not in (BOS,)]
    dictionary = Dictionary()
    for w in words:
        dictionary.add_entry(w)
    lm = KenLM(str(tmp_path / "lm.arpa"), dictionary)
    for sentence in _sentences() + [["THE", "RAT", "SAT", "ON", "A", "LOG"], ["UNHEARD", "CAT"]]:
        state, context = lm.start(False), [BOS]
        for word in [*sentence, EOS]:
            state, score = lm.score(state, dictionary.get_index(word if word in words else UNK))
            assert score == pytest.approx(math.log10(model.prob(context, word)), abs=1e-4), (context, word)
            context.append(word)


def test_text_is_normalised_and_read_a_line_at_a_time(tmp_path):
    (tmp_path / "a.txt").write_text("Hello, world!\n\n  Don't stop.\n", encoding="utf-8")
    with gzip.open(tmp_path / "b.txt.gz", "wt", encoding="utf-8") as f:
        f.write("Mr. Smith's cat\n")
    files = [tmp_path / "a.txt", tmp_path / "b.txt.gz"]
    assert list(read_sentences(files)) == [["HELLO", "WORLD"], ["DON'T", "STOP"], ["MR", "SMITH'S", "CAT"]]
    chars = list(read_sentences([tmp_path / "a.txt"], units="chars"))
    assert chars[0] == list("HELLO|WORLD")
    with pytest.raises(LMError, match="nope.txt: cannot read"):
        list(read_sentences([tmp_path / "nope.txt"]))
    with pytest.raises(LMError, match="no words"):
        build([], 3)


def test_lexicon_spells_each_word_in_acoustic_units(tmp_path):
    model = build(_sentences(["don't stop", "stop"]), 2)
    assert write_lexicon(model.vocabulary, tmp_path / "lexicon.txt") == 2
    assert (tmp_path / "lexicon.txt").read_text().splitlines() == ["DON'T\tD O N ' T |", "STOP\tS T O P |"]


# -- reading ARPA back, and mixing models ------------------------------------------------------------

OTHER = ["press one for sales", "press two for support", "the line is busy", "please hold the line"]


def test_read_arpa_gives_back_the_model(tmp_path):
    model = build(_sentences(), 3, prune=(0, 0, 1))
    model.write_arpa(tmp_path / "lm.arpa.gz")
    back = read_arpa(tmp_path / "lm.arpa.gz")
    assert back.order == 3 and set(back.vocabulary) == set(model.vocabulary)
    for context in _contexts(model):
        for w in model.vocabulary:
            assert back.prob(context, w) == pytest.approx(model.prob(context, w), rel=1e-5)
    (tmp_path / "linked.arpa").symlink_to(tmp_path / "lm.arpa.gz")  # gzip is known by its bytes
    assert read_arpa(tmp_path / "linked.arpa").probs == back.probs
    (tmp_path / "bad.arpa").write_text("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\n")
    with pytest.raises(LMError, match="bad.arpa:5"):
        read_arpa(tmp_path / "bad.arpa")
    with pytest.raises(LMError, match="cannot read"):
        read_arpa(tmp_path / "missing.arpa")


@pytest.mark.parametrize("orders", [(3, 3), (3, 2), (1, 2)])
def test_mixture_is_a_distribution_over_both_vocabularies(orders):
    a, b = build(_sentences(), orders[0]), build(_sentences(OTHER), orders[1], prune=(0, 1))
    mixed = mix([a, b], [3, 1])  # weights are normalised: 0.75, 0.25
    words = [w for w in mixed.vocabulary if w != BOS]
    assert set(words) == (set(a.vocabulary) | set(b.vocabulary)) - {BOS}
    for context in _contexts(mixed):
        assert sum(mixed.prob(context, w) for w in words) == pytest.approx(1.0, abs=1e-9), context
    # Where both models store the n-gram, the mixture is exactly their weighted sum; a word one
    # model never saw gets nothing from it.
    assert mixed.prob(["THE"], "LINE") == pytest.approx(0.25 * b.prob(["THE"], "LINE"))  # LINE: b's only
    assert mixed.prob([], "THE") == pytest.approx(0.75 * a.prob([], "THE") + 0.25 * b.prob([], "THE"))
    assert mixed.prob([], "CAT") == pytest.approx(0.75 * a.prob([], "CAT"))


def test_mixing_one_model_changes_nothing():
    a = build(_sentences(), 3, prune=(0, 0, 1))
    same = mix([a], [1.0])
    for context in _contexts(a):
        for w in a.vocabulary:
            assert same.prob(context, w) == pytest.approx(a.prob(context, w), rel=1e-9)
    with pytest.raises(LMError, match="weight"):
        mix([a, a], [0, 0])
    # A weight of 0 leaves that model out (its words would have had probability 0).
    b = build(_sentences(OTHER), 2)
    alone = mix([a, b], [1, 0])
    assert set(alone.vocabulary) == set(a.vocabulary) and alone.prob(["THE"], "CAT") == pytest.approx(a.prob(["THE"], "CAT"))


def test_lm_mix_command(tmp_path, capsys):
    from asr.cli import main

    build(_sentences(), 3).write_arpa(tmp_path / "a.arpa")
    build(_sentences(OTHER), 2).write_arpa(tmp_path / "b.arpa.gz")
    out = tmp_path / "mixed.arpa.gz"
    assert main(["lm", "mix", str(tmp_path / "a.arpa"), str(tmp_path / "b.arpa.gz"), "--weights", "0.5", "0.5",
                 "--out", str(out), "--lexicon", str(tmp_path / "lexicon.txt")]) == 0
    printed = capsys.readouterr().out
    assert "3-grams" in printed and "lexicon.txt" in printed
    assert "SALES\tS A L E S |" in (tmp_path / "lexicon.txt").read_text()
    assert read_arpa(out).prob([], "SALES") > 0
    assert main(["lm", "mix", str(tmp_path / "a.arpa"), "--weights", "0.5", "0.5", "--out", str(out)]) == 2


def test_perplexity_counts_oov_and_agrees_with_the_probabilities(tmp_path, capsys):
    from asr.cli import main
    from asr.lm import perplexity

    model = build(_sentences(), 2)
    r = perplexity(model, [["THE", "CAT", "SAT"], ["A", "ZEBRA", "SAT"]])
    assert (r.sentences, r.words, r.oov) == (2, 6, 1) and r.oov_rate == pytest.approx(1 / 6)
    logs = [model.prob(c, w) for c, w in [([BOS], "THE"), ([BOS, "THE"], "CAT"), (["CAT"], "SAT"), (["SAT"], EOS),
                                          ([BOS], "A"), ([BOS], "SAT"), (["SAT"], EOS)]]
    assert r.perplexity == pytest.approx(math.exp(-sum(math.log(p) for p in logs) / len(logs)))
    model.write_arpa(tmp_path / "lm.arpa")
    (tmp_path / "t.txt").write_text("the cat sat\na zebra sat\n")
    assert main(["lm", "perplexity", str(tmp_path / "lm.arpa"), "--text", str(tmp_path / "t.txt")]) == 0
    assert "2 sentences, 6 words, OOV 1 (16.67%), perplexity" in capsys.readouterr().out


def test_in_units_upper_cases_and_drops_words_decoding_cannot_spell():
    from asr.lm import in_units

    lines = ["the x-ray of 1990 was fine", "the a. b. c. was fine", "the cat's x-ray", "fine the cat"]
    model = build([line.split() for line in lines], 3)  # lower case, punctuated: not normalised
    units, dropped = in_units(model)
    assert dropped == 5  # x-ray 1990 a. b. c.
    assert "CAT'S" in units.vocabulary and "THE" in units.vocabulary and "X-RAY" not in units.vocabulary
    words = [w for w in units.vocabulary if w != BOS]
    for context in _contexts(units):
        assert sum(units.prob(context, w) for w in words) == pytest.approx(1.0, abs=1e-9), context
    assert units.prob(["THE"], "CAT") == pytest.approx(model.prob(["the"], "cat"))  # kept as they were


def test_in_units_merges_spellings_that_differ_only_in_case():
    from asr.lm import in_units

    lines = ["the cat sat", "The cat sat", "The dog ran", "a cat", "THE end"]
    model = build([line.split() for line in lines], 2)
    units, dropped = in_units(model)
    assert dropped == 0 and units.vocabulary.count("THE") == 1
    spellings = ["the", "The", "THE"]
    assert units.prob([], "THE") == pytest.approx(sum(model.prob([], w) for w in spellings))  # no mass lost
    # After THE: each spelling's followers, weighted by how likely that spelling is.
    weights = [model.prob([], w) for w in spellings]
    expected = sum(q * model.prob([w], "cat") for q, w in zip(weights, spellings)) / sum(weights)
    assert units.prob(["THE"], "CAT") == pytest.approx(expected)
    words = [w for w in units.vocabulary if w != BOS]
    for context in _contexts(units):
        assert sum(units.prob(context, w) for w in words) == pytest.approx(1.0, abs=1e-9), context


def test_broken_arpa_files_are_refused_and_unknown_words_in_a_model_without_unk_score_zero(tmp_path):
    (tmp_path / "order.arpa").write_text("\\data\\\nngram 1=1\nngram 2=1\n\n\\2-grams:\n-0.5 a b\n\n\\1-grams:\n-0.3 a\n\\end\\\n")
    with pytest.raises(LMError, match="order.arpa:5: .2-grams: after 0 sections"):
        read_arpa(tmp_path / "order.arpa")
    # A bigram whose word has no unigram, in a model without <unk>: it used to loop for ever.
    (tmp_path / "no_unk.arpa").write_text("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-0.3 a -0.1\n-0.3 </s>\n"
                                          "\n\\2-grams:\n-0.5 a b\n\n\\end\\\n")
    model = read_arpa(tmp_path / "no_unk.arpa")
    assert model.prob(["a"], "b") == 0.0 and model.prob([], "zebra") == 0.0


def test_entropy_pruning_drops_what_costs_least_and_stays_a_distribution():
    from asr.lm import perplexity, prune_entropy

    text = _sentences() + _sentences(OTHER) + _sentences(["the cat sat on the log", "a dog sat on the mat"])
    model = build(text, 3)
    same = prune_entropy(model, 0.0)  # nothing costs less than nothing
    assert [len(p) for p in same.probs] == [len(p) for p in model.probs]
    sizes, ppl = [], []
    for threshold in (1e-4, 1e-3, 1e-2):
        pruned = prune_entropy(model, threshold)
        sizes.append(sum(len(p) for p in pruned.probs))
        ppl.append(perplexity(pruned, text).perplexity)
        words = [w for w in pruned.vocabulary if w != BOS]
        for context in _contexts(pruned):
            assert sum(pruned.prob(context, w) for w in words) == pytest.approx(1.0, abs=1e-9), context
        for n in (2, 3):  # what ARPA readers look up: prefix and suffix
            for gram in pruned.probs[n - 1]:
                assert gram[:-1] in pruned.probs[n - 2] and gram[1:] in pruned.probs[n - 2], gram
    assert sizes[0] > sizes[1] > sizes[2] >= len(model.probs[0])
    assert perplexity(model, text).perplexity <= ppl[0] <= ppl[1] <= ppl[2]
