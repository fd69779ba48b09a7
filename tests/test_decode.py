import gzip

import numpy as np
import pytest
import torch

from asr.decode import BeamConfig, BeamDecoder, DecodeError, greedy
from asr.lm import build, read_sentences
from asr.text import Vocabulary, read_lexicon


def frames(vocab, units):
    """One-hot log-probabilities for a frame sequence given as unit strings ('_' is blank)."""
    ids = [vocab.blank if u == "_" else vocab.index[u] for u in units]
    lp = torch.full((len(ids), len(vocab)), -20.0)
    lp[torch.arange(len(ids)), ids] = 0.0
    return lp


def test_greedy_collapses_repeats_and_drops_blanks():
    vocab = Vocabulary()
    seq = list("__HH_E_LL_L__OO||WW_O_RR_LL_D__")
    lp = frames(vocab, seq)[None]
    hyp = greedy(lp, torch.tensor([len(seq)]), vocab)[0]
    assert hyp.text == "HELLO WORLD"
    assert hyp.score == 0.0


def test_greedy_respects_lengths_in_a_batch():
    vocab = Vocabulary()
    a, b = frames(vocab, list("A_B")), frames(vocab, list("C_CZZZ"))
    batch = torch.stack([torch.cat([a, frames(vocab, list("XYZ"))]), b])
    hyps = greedy(batch, torch.tensor([3, 3]), vocab)
    assert [h.text for h in hyps] == ["AB", "CC"]


def test_leading_trailing_and_double_boundaries_vanish():
    vocab = Vocabulary()
    seq = list("|_A_||_|B|")
    assert greedy(frames(vocab, seq)[None], torch.tensor([len(seq)]), vocab)[0].text == "A B"


# -- beam search with an n-gram LM ------------------------------------------------------------------


def soft(vocab, spec):
    """Log-probabilities from a list of {unit: probability} frames (the rest to blank)."""
    lp = torch.full((len(spec), len(vocab)), 1e-6)
    for t, probs in enumerate(spec):
        for unit, p in probs.items():
            lp[t, vocab.index[unit]] = p
        lp[t, vocab.blank] = max(1e-6, 1 - sum(probs.values()))
    return (lp / lp.sum(-1, keepdim=True)).log()[None]


# "THE CA?" where the acoustics lean to B (0.55) over T (0.45).
def _ambiguous(vocab):
    spec = [{"T": 0.9}, {}, {"H": 0.9}, {}, {"E": 0.9}, {"|": 0.9}, {"C": 0.9}, {}, {"A": 0.9}, {},
            {"B": 0.55, "T": 0.45}, {}]
    return soft(vocab, spec), torch.tensor([len(spec)])


def _lm(tmp_path, lines, units="words", order=3, name="lm.arpa"):
    (tmp_path / "text.txt").write_text("\n".join(lines) + "\n")
    model = build(read_sentences([tmp_path / "text.txt"], units), order)
    model.write_arpa(tmp_path / name)
    return str(tmp_path / name)


CAT_TEXT = ["the cat sat", "the cat ran", "a cat", "the cat", "a cab"]


def test_beam_without_lm_agrees_with_greedy():
    vocab = Vocabulary()
    lp, n = _ambiguous(vocab)
    assert BeamDecoder(vocab, BeamConfig())(lp, n)[0].text == greedy(lp, n, vocab)[0].text == "THE CAB"


def test_a_word_lm_overrules_weak_acoustics_within_its_lexicon(tmp_path):
    vocab = Vocabulary()
    lp, n = _ambiguous(vocab)
    lm = _lm(tmp_path, CAT_TEXT)
    decoder = BeamDecoder(vocab, BeamConfig(lm=lm, lm_weight=1.0))
    assert decoder.lexicon  # words: lexicon-constrained
    assert decoder(lp, n)[0].text == "THE CAT"
    assert decoder.with_weights(0.0, 0.0)(lp, n)[0].text == "THE CAB"  # no LM weight: the acoustics win


def test_beam_tokens_keep_only_the_likeliest_units_of_each_frame(tmp_path):
    vocab = Vocabulary()
    lp, n = _ambiguous(vocab)
    lm = _lm(tmp_path, CAT_TEXT)
    # T is the second likeliest unit where the LM wants it: two units a frame let the LM choose it,
    # one does not, whatever the LM says
    for tokens, text in ((0, "THE CAT"), (2, "THE CAT"), (1, "THE CAB")):
        assert BeamDecoder(vocab, BeamConfig(lm=lm, lm_weight=1.0, beam_size_token=tokens))(lp, n)[0].text == text
    with pytest.raises(ValueError, match="beam_size_token must be 0"):
        BeamConfig(beam_size_token=-1)


def test_the_last_word_survives_when_the_audio_ends_on_it(tmp_path):
    """The model emits no boundary after the last word, and the lexicon spells every word with
    one: the search must still finish the last word when its last letter is the last frame."""
    vocab = Vocabulary()
    decoder = BeamDecoder(vocab, BeamConfig(lm=_lm(tmp_path, CAT_TEXT), lm_weight=1.0))
    a, b = frames(vocab, list("_T_H_E_|_C_A_T")), frames(vocab, list("_A_|_C_A_T"))
    batch = torch.stack([a, torch.cat([b, frames(vocab, list("CCCC"))])])  # padding past b's end
    assert [h.text for h in decoder(batch, torch.tensor([len(a), len(b)]))] == ["THE CAT", "A CAT"]


def test_a_character_lm_decodes_without_a_lexicon(tmp_path):
    vocab = Vocabulary()
    lp, n = _ambiguous(vocab)
    lm = _lm(tmp_path, CAT_TEXT * 3, units="chars", order=6)
    decoder = BeamDecoder(vocab, BeamConfig(lm=lm, lm_weight=1.0))
    assert decoder.lexicon is None
    assert decoder(lp, n)[0].text == "THE CAT"


def test_gzipped_arpa_and_bad_lm_files(tmp_path):
    vocab = Vocabulary()
    lp, n = _ambiguous(vocab)
    plain = _lm(tmp_path, CAT_TEXT)
    with open(plain, "rb") as src, gzip.open(tmp_path / "lm.arpa.gz", "wb") as dst:
        dst.write(src.read())
    assert BeamDecoder(vocab, BeamConfig(lm=str(tmp_path / "lm.arpa.gz"), lm_weight=1.0))(lp, n)[0].text == "THE CAT"
    # gzip under a plain name, as a recipe links exp/lm.arpa to a downloaded 4-gram.arpa.gz
    (tmp_path / "linked.arpa").symlink_to(tmp_path / "lm.arpa.gz")
    assert BeamDecoder(vocab, BeamConfig(lm=str(tmp_path / "linked.arpa"), lm_weight=1.0))(lp, n)[0].text == "THE CAT"
    (tmp_path / "junk.arpa").write_text("this is not a language model\n")
    with pytest.raises(DecodeError, match="junk.arpa: not an ARPA file"):
        BeamDecoder(vocab, BeamConfig(lm=str(tmp_path / "junk.arpa")))
    with pytest.raises(DecodeError, match="nope.arpa: no such LM file"):
        BeamDecoder(vocab, BeamConfig(lm=str(tmp_path / "nope.arpa")))
    with pytest.raises(DecodeError, match="nope.txt: not a usable lexicon"):
        BeamDecoder(vocab, BeamConfig(lm=plain, lexicon=str(tmp_path / "nope.txt")))
    # A valid ARPA file of an order the decoder's KenLM was not built for: said so, with the fix
    long = _lm(tmp_path, CAT_TEXT * 3, units="chars", order=7, name="long.arpa")
    with pytest.raises(DecodeError, match=r"order above 6, the most the decoder's KenLM loads: build it with --order 6"):
        BeamDecoder(vocab, BeamConfig(lm=long))
    # KenLM's reason, not the C++ signature its message opens with
    unigram = _lm(tmp_path, CAT_TEXT, order=1, name="unigram.arpa")
    with pytest.raises(DecodeError, match=r"unigram.arpa: not a usable n-gram LM \(This ngram implementation assumes "
                                          r"at least a bigram model"):
        BeamDecoder(vocab, BeamConfig(lm=unigram))
    with pytest.raises(DecodeError, match=f"{tmp_path}: is a directory, not an LM file"):
        BeamDecoder(vocab, BeamConfig(lm=str(tmp_path)))


def test_a_lexicon_or_lm_the_units_cannot_spell_is_named(tmp_path):
    vocab = Vocabulary()
    lm = _lm(tmp_path, CAT_TEXT)
    (tmp_path / "lex.txt").write_text("CAT\tC A T |\ncafé\tc a f é |\n")
    with pytest.raises(DecodeError, match=r"lex.txt: line 2: 'café' is spelled with 'c', not one of the model's units$"):
        BeamDecoder(vocab, BeamConfig(lm=lm, lexicon=str(tmp_path / "lex.txt")))
    # no word of the LM spelled in the units: the LM is named, not the lexicon made from it
    (tmp_path / "lower.arpa").write_text((tmp_path / "lm.arpa").read_text().lower())
    with pytest.raises(DecodeError, match=r"lower.arpa: no word of the LM can be spelled with the model's units "
                                          r"\(its words look like the, cat, sat; the units are A B C"):
        BeamDecoder(vocab, BeamConfig(lm=str(tmp_path / "lower.arpa")))



# -- word times by forced alignment ------------------------------------------------------------------

@pytest.mark.slow
def test_word_times_are_within_50_ms_of_the_truth(spaced_model):
    from asr.decode import align_words
    from asr.transcribe import emissions
    from conftest import random_words, spaced_words

    rng = np.random.default_rng(123)
    frame = spaced_model.config.features.hop_ms * spaced_model.config.model.stack / 1000
    errors = []
    for _ in range(6):
        words = random_words(rng, 5)
        wave, truth = spaced_words(words, rng)
        log_probs, lengths = emissions(spaced_model, [torch.from_numpy(wave)])
        assert greedy(log_probs, lengths, spaced_model.vocab)[0].text == " ".join(words)
        aligned = align_words(log_probs[0], int(lengths[0]), " ".join(words), spaced_model.vocab, frame)
        assert [w.text for w in aligned] == words
        for w, (start, end) in zip(aligned, truth):
            errors += [w.start - start, w.end - end]
            assert w.start < w.end and 0.5 < w.confidence <= 1.0
    assert max(map(abs, errors)) < 0.050, errors


def test_alignment_of_text_that_cannot_fit_is_empty():
    from asr.decode import align_words

    vocab = Vocabulary()
    lp = frames(vocab, list("_A_"))
    assert align_words(lp, 3, "ABCDEFG", vocab, 0.03) == []
    assert align_words(lp, 3, "", vocab, 0.03) == []


def test_word_times_follow_the_lexicons_spelling(tmp_path):
    """A lexicon word written otherwise than its units ('OK' spelled O K A Y, lower case) is aligned on
    its spelling; a word whose units the model lacks is a DecodeError, not a KeyError."""
    from asr.decode import align_words

    vocab = Vocabulary()
    (tmp_path / "lex.txt").write_text("OK\tO K A Y |\nhello\tH E L L O |\nTHE\tT H E |\n")
    decoder = BeamDecoder(vocab, BeamConfig(lm=_lm(tmp_path, ["ok hello", "hello ok"]), lexicon=str(tmp_path / "lex.txt")))
    assert decoder.spellings == {"OK": ["O", "K", "A", "Y"], "hello": ["H", "E", "L", "L", "O"]}
    lp = frames(vocab, list("__H_E_L_L_O__|__O_K_A_Y__"))
    hyp = decoder(lp[None], torch.tensor([len(lp)]))[0]
    assert hyp.text == "hello OK"
    words = align_words(lp, len(lp), hyp.text, vocab, 0.04, spellings=decoder.spellings)
    assert [w.text for w in words] == ["hello", "OK"]
    assert words[0].end <= 13 * 0.04 <= words[1].start  # split at the '|' frame
    assert words[1].end >= 22 * 0.04 and all(w.confidence > 0.9 for w in words)  # through Y, the last unit
    with pytest.raises(DecodeError, match=r"no word times: 'DR.' has '.', not one of the model's units"):
        align_words(lp, len(lp), "HELLO DR.", vocab, 0.04)


# -- a phone model: words come out of its lexicon -----------------------------------------------------

SOUNDS = "K. K EY\nK K EY\nKAY K EY\nKAYE K EY\nQUAY K EY\nQUAY(2) K W EY\nCAY K EY\nQUAI K EY\nKHE K EY\nCAT K AE T\nCAT(2) K AH T\n"


def test_a_phone_model_decodes_words_through_its_lexicon_with_or_without_an_lm(tmp_path):
    vocab = Vocabulary(pronunciations=read_lexicon(SOUNDS, "lex"))
    lp = frames(vocab, ["K", "_", "EY", "|", "K", "_", "AH", "T"])[None]
    decoder = BeamDecoder(vocab, BeamConfig())  # no LM: any word of the lexicon
    # CAT said with its second pronunciation; of the homophones, the lexicon's first, K (K. is a
    # letter name, to train on only)
    assert decoder(lp, torch.tensor([8]))[0].text == "K CAT"
    assert [line for line in open(decoder.lexicon) if line.startswith("K")] == ["K K EY |\n"]
    # With an LM: its words the lexicon pronounces. flashlight's trie holds 6 words of one sound, so
    # the 7th likeliest (KHE) is left out, not whichever the trie drops (it dropped K once)
    words = ["K", "KAY", "KAYE", "QUAY", "CAY", "QUAI", "KHE", "CAT", "DOG"]
    probs = [-1.0, -2.0, -3.0, -3.5, -4.0, -4.5, -6.0, -1.5, -1.0]
    lm = tmp_path / "lm.arpa"  # KHE least likely, though it comes before QUAI and QUAY in the file
    lm.write_text("\\data\\\nngram 1=11\nngram 2=1\n\n\\1-grams:\n-1\t<s>\t0\n-1\t</s>\n"
                  + "".join(f"{p}\t{w}\t0\n" for w, p in sorted(zip(words, probs))) + "\n\\2-grams:\n-0.5\tK CAT\n\n\\end\\\n")
    decoder = BeamDecoder(vocab, BeamConfig(lm=str(lm), lm_weight=1.0))
    lines = open(decoder.lexicon).read().splitlines()
    assert sum(line.split()[1:] == ["K", "EY", "|"] for line in lines) == 6 and "QUAY K W EY |" in lines
    assert not any(line.startswith(("DOG ", "KHE ")) for line in lines)  # DOG: no pronunciation
    assert decoder(lp, torch.tensor([8]))[0].text == "K CAT"
    with pytest.raises(DecodeError, match="the model's lexicon pronounces no word of the LM"):
        BeamDecoder(vocab, BeamConfig(lm=_lm(tmp_path, ["dog"], order=2, name="dog.arpa")))
    # The model's lexicon given by hand (CMUdict's form, as it trains: no '|'): searched as the
    # model ends words, with '|', and 6 words of one sound at most, the file's first (it searched
    # 3 points worse on the tuning set without the '|')
    given = tmp_path / "given.txt"
    given.write_text(vocab.lexicon_text())  # 'CAT K AE T', 'CAT K AH T': the form tools/lexicon.py writes
    decoder = BeamDecoder(vocab, BeamConfig(lm=str(lm), lexicon=str(given), lm_weight=1.0))
    lines = open(decoder.lexicon).read().splitlines()
    assert all(line.endswith(" |") for line in lines) and "CAT K AH T |" in lines
    assert sum(line.split()[1:] == ["K", "EY", "|"] for line in lines) == 6 and not any(line.startswith("KHE ") for line in lines)
    assert decoder(lp, torch.tensor([8]))[0].text == "K CAT"
    # A line given twice is one spelling: written once, and one of the 6 words its sound holds
    given.write_text("K K EY\n" * 3 + vocab.lexicon_text())
    decoder = BeamDecoder(vocab, BeamConfig(lm=str(lm), lexicon=str(given), lm_weight=1.0))
    lines = open(decoder.lexicon).read().splitlines()
    assert lines.count("K K EY |") == 1 and sum(line.split()[1:] == ["K", "EY", "|"] for line in lines) == 6


def test_a_beam_stuck_inside_a_word_searches_again_wider():
    # K leads the first frame, so a beam of one follows CAB's prefix, K AE, and then hears T,
    # which CAB cannot take: no hypothesis left can end a word. The utterance is searched again,
    # four times as wide, where AT (AE, T) is still held after the first frame.
    vocab = Vocabulary(pronunciations=read_lexicon("AT AE T\nCAB K AE B\n", "lex"))
    lp = soft(vocab, [{"K": 0.5, "AE": 0.45}, {"AE": 0.9}, {"T": 0.9}, {}])
    decoder = BeamDecoder(vocab, BeamConfig(beam_size=1))
    hyp = decoder(lp, torch.tensor([4]))[0]
    assert hyp.text == "AT" and hyp.score > -20 and decoder.searched_again == 1
    assert decoder(soft(vocab, [{"AE": 0.9}, {"T": 0.9}, {}]), torch.tensor([3]))[0].text == "AT"
    assert decoder.searched_again == 1  # a beam of one that is not stuck: searched once


# -- your words: joined to the lexicon and the LM at decoding ------------------------------------------


def test_words_join_a_phone_models_lexicon_and_its_lm(tmp_path):
    vocab = Vocabulary(pronunciations=read_lexicon("CAT K AE T\nGOD G AO D\nA AH\n", "lex"))
    lp = frames(vocab, ["K", "_", "AE", "T", "|", "D", "_", "AO", "G"])[None]
    n = torch.tensor([9])
    lm = _lm(tmp_path, ["a cat", "a god", "cat god"])
    assert "DOG" not in BeamDecoder(vocab, BeamConfig(lm=lm))(lp, n)[0].text  # neither knows it
    decoder = BeamDecoder(vocab, BeamConfig(lm=lm), words={"DOG": [["D", "AO", "G"]]})
    assert decoder(lp, n)[0].text == "CAT DOG"
    assert decoder.spellings == {"DOG": ["D", "AO", "G"]}  # its word times follow its phones
    assert vocab.pronunciations.keys() == {"CAT", "GOD", "A"}  # the model's own lexicon is left alone
    assert open(lm).read().count("DOG") == 0  # and so is the LM file: the decoder reads a copy
    # with no LM: the lexicon search alone
    assert BeamDecoder(vocab, BeamConfig(), words={"DOG": [["D", "AO", "G"]]})(lp, n)[0].text == "CAT DOG"


def test_the_word_boost_sets_how_likely_an_added_word_is(tmp_path):
    vocab = Vocabulary()
    spec = [{"C": 0.9}, {}, {"A": 0.9}, {}, {"B": 0.55, "T": 0.45}, {}]  # "CA?", leaning to CAB
    lp, n = soft(vocab, spec), torch.tensor([len(spec)])
    lm = _lm(tmp_path, ["cat sat", "the cat", "a cat ran", "the dog"], order=2)  # CAT, never CAB
    assert BeamDecoder(vocab, BeamConfig(lm=lm))(lp, n)[0].text == "CAT"
    cab = {"CAB": [list("CAB")]}
    assert BeamDecoder(vocab, BeamConfig(lm=lm), words=cab, word_boost=1.0)(lp, n)[0].text == "CAB"
    assert BeamDecoder(vocab, BeamConfig(lm=lm), words=cab, word_boost=-6.0)(lp, n)[0].text == "CAT"


def test_words_that_cannot_be_added_are_named(tmp_path):
    vocab = Vocabulary()
    with pytest.raises(DecodeError, match="a letter model with no LM spells any word already"):
        BeamDecoder(vocab, BeamConfig(), words={"CAB": [list("CAB")]})
    chars = _lm(tmp_path, ["the cat"], units="chars", name="chars.arpa")
    with pytest.raises(DecodeError, match="a character LM spells any word already"):
        BeamDecoder(vocab, BeamConfig(lm=chars), words={"CAB": [list("CAB")]})
    (tmp_path / "lex.txt").write_text("THE T H E |\n")
    with pytest.raises(DecodeError, match="words cannot be added to a lexicon file"):
        BeamDecoder(vocab, BeamConfig(lm=_lm(tmp_path, ["the"]), lexicon=str(tmp_path / "lex.txt")),
                    words={"CAB": [list("CAB")]})
    with pytest.raises(DecodeError, match="CAFÉ: not spelt with the model's units"):
        BeamDecoder(vocab, BeamConfig(lm=_lm(tmp_path, ["the"])), words={"CAFÉ": [list("CAFÉ")]})
