import pytest

from asr.score import score, total


def test_counts_substitutions_deletions_insertions():
    s = score(["THE CAT SAT ON THE MAT"], ["THE BAT SAT THE MAT TODAY"])
    assert (s.substitutions, s.deletions, s.insertions, s.words) == (1, 1, 1, 6)
    assert s.wer == pytest.approx(50.0)


def test_corpus_rate_sums_errors_over_utterances():
    s = score(["A B C D", "E F"], ["A B C D", "X"])
    assert s.words == 6 and s.wer == pytest.approx(100 * 2 / 6)
    assert s.utterances == 2


def test_cer_counts_spaces_as_characters():
    s = score(["AB CD"], ["ABCD"])
    assert s.chars == 5 and s.char_errors == 1
    assert s.cer == pytest.approx(20.0)


def test_empty_reference_and_hypothesis():
    s = score(["", "A B"], ["X", ""])
    assert (s.insertions, s.deletions, s.words) == (1, 2, 2)
    assert score([""], [""]).wer == 0.0


def test_summary_line():
    assert score(["A B"], ["A B"]).summary() == "WER 0.00% CER 0.00% (1 utterances)"
    assert total([]).summary() == "WER n/a CER n/a (0 utterances)"  # nothing scored is no figure, not 0%


def test_mismatched_lengths():
    with pytest.raises(ValueError):
        score(["A"], [])
