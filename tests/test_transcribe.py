import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from asr import checkpoint
from asr.data import Utterance, read_manifest, write_manifest
from asr.transcribe import evaluate, recognize, transcribe
from conftest import MEMORISED, ROOT, tone_speech, write_tone_corpus


@pytest.fixture(scope="module")
def recognizer(memorised):
    return checkpoint.load_recognizer(memorised.exp / "best.pt")


def test_batches_give_what_single_files_give(recognizer, memorised):
    import torch

    waves = [torch.from_numpy(tone_speech(t, seed=i)) for i, t in enumerate(MEMORISED)]
    together = [h.text for h in recognize(recognizer, waves)]
    alone = [recognize(recognizer, [w])[0].text for w in waves]
    assert together == alone == MEMORISED


def test_results_keep_input_order_and_failures_do_not_stop_the_rest(recognizer, memorised, tmp_path):
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    (tmp_path / "bad.wav").write_text("no")
    inputs = [paths[0], str(tmp_path / "bad.wav"), paths[1], str(tmp_path / "gone.flac"), paths[2]]
    results = list(transcribe(recognizer, inputs, batch_size=2))
    assert [r.path for r in results] == inputs
    assert [r.text for r in results] == ["CAB", None, "BAD CAB", None, "ACE BED"]
    assert results[1].error.startswith(f"{tmp_path / 'bad.wav'}: ")
    assert "no such file" in results[3].error


def test_silent_audio_reads_as_nothing_and_quiet_speech_still_reads(recognizer, memorised):
    from asr.transcribe import Samples

    cab = tone_speech("CAB")  # peaks at -10 dBFS
    rng = np.random.default_rng(0)
    inputs = [Samples("zeros", np.zeros(16000, np.float32), 16000),
              Samples("two bits", rng.integers(-2, 3, 16000).astype(np.float32) / 32768, 16000),
              Samples("-50 dBFS", cab * 10 ** (-40 / 20), 16000),  # quiet, but speech: the mean removes the gain
              Samples("-70 dBFS", cab * 10 ** (-60 / 20), 16000)]  # under audio.SILENT_DBFS: no speech
    results = list(transcribe(recognizer, inputs, timestamps=True))
    assert [r.text for r in results] == ["", "", "CAB", ""]
    assert [len(r.words) for r in results] == [0, 0, 1, 0]


def test_the_same_audio_at_another_rate_and_layout(recognizer, memorised, tmp_path):
    import librosa
    import numpy as np

    wave, rate = sf.read(read_manifest(memorised.dev)[1].audio_filepath, dtype="float32")
    up = librosa.resample(wave, orig_sr=rate, target_sr=44100)
    sf.write(tmp_path / "stereo.flac", np.stack([up, up], 1), 44100, subtype="PCM_24")
    assert next(transcribe(recognizer, [tmp_path / "stereo.flac"])).text == "BAD CAB"


def test_evaluate_scores_every_utterance(recognizer, memorised, tmp_path):
    result = evaluate(recognizer, memorised.dev)
    assert result.score.wer == 0.0 and result.score.utterances == 3
    assert [u.hypothesis for u in result.utterances] == MEMORISED
    # A wrong reference counts as errors: the score is computed, not assumed.
    utts = read_manifest(memorised.dev)
    write_manifest(tmp_path / "wrong.jsonl", [utts[0]._replace(text="CAB CAB")])
    wrong = evaluate(recognizer, tmp_path / "wrong.jsonl")
    assert (wrong.score.deletions, wrong.score.words, wrong.score.wer) == (1, 2, 50.0)


def test_evaluate_names_unreadable_audio_and_scores_the_rest(recognizer, memorised, tmp_path):
    utts = read_manifest(memorised.dev)
    gone = str(tmp_path / "gone.wav")
    write_manifest(tmp_path / "m.jsonl", [utts[0], utts[1]._replace(audio_filepath=gone), utts[2]])
    result = evaluate(recognizer, tmp_path / "m.jsonl")
    assert result.failed == [f"{gone}: no such file"]
    assert [u.hypothesis for u in result.utterances] == ["CAB", "ACE BED"]
    assert result.score.utterances == 2 and result.score.wer == 0.0


def test_tune_lm_finds_weights_that_decode_the_dev_set(memorised, tmp_path):
    from asr.decode import BeamConfig, BeamDecoder
    from asr.lm import build
    from asr.transcribe import tune

    recognizer = checkpoint.load_recognizer(memorised.exp / "best.pt")
    build([t.split() for t in MEMORISED], 2).write_arpa(tmp_path / "lm.arpa")
    decoder = BeamDecoder(recognizer.vocab, BeamConfig(lm=str(tmp_path / "lm.arpa")))
    points = tune(recognizer, memorised.dev, decoder, [0.0, 1.0], [-1.0, 0.0])
    assert len(points) == 4 and points[0].score.wer == 0.0
    assert [p.score.wer for p in points] == sorted(p.score.wer for p in points)


def test_a_given_batch_size_is_kept_with_beam_search_too(recognizer, memorised, monkeypatch):
    import asr.transcribe as module
    from asr.decode import BeamConfig, BeamDecoder

    sizes = []
    real = module.emissions
    monkeypatch.setattr(module, "emissions", lambda r, waves: sizes.append(len(waves)) or real(r, waves))
    decoder = BeamDecoder(recognizer.vocab, BeamConfig(beam_size=8, workers=2))
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    assert [t.text for t in transcribe(recognizer, paths, batch_size=1, decoder=decoder)] == MEMORISED
    assert sizes == [1, 1, 1]
    sizes.clear()  # by default, enough for every decoding process: here all three at once
    assert [t.text for t in transcribe(recognizer, paths, decoder=decoder)] == MEMORISED
    assert sizes == [3]


def test_timestamps_give_each_word_its_times_in_order(recognizer, memorised):
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    for t, text in zip(transcribe(recognizer, paths, timestamps=True), MEMORISED):
        assert t.text == text and [w.text for w in t.words] == text.split()
        assert 0 <= t.words[0].start and t.words[-1].end <= t.duration
        assert all(a.end <= b.start for a, b in zip(t.words, t.words[1:]))


def test_captions_split_at_pauses_and_length_and_render_as_srt_and_vtt():
    from asr.decode import Word
    from asr.transcribe import captions, to_srt, to_vtt

    words = [Word("ONE", 0.5, 0.9, 1.0), Word("TWO", 1.0, 1.4, 1.0), Word("THREE", 2.5, 3.0, 1.0),
             *(Word(f"W{i}", 3.1 + i * 0.3, 3.3 + i * 0.3, 1.0) for i in range(8))]
    blocks = captions(words, max_words=7, max_seconds=3.5, pause=0.6)
    assert [b.text for b in blocks] == ["ONE TWO", "THREE W0 W1 W2 W3 W4 W5", "W6 W7"]
    assert to_srt(blocks[:1]) == "1\n00:00:00,500 --> 00:00:01,400\nONE TWO\n\n"
    assert to_vtt(blocks[:1]) == "WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nONE TWO\n\n"
    assert to_srt([blocks[0]._replace(start=3723.004)]).splitlines()[1].startswith("01:02:03,004 -->")


@pytest.mark.slow
def test_a_long_recording_streams_through_windows_and_keeps_every_word_once(spaced_model, tmp_path):
    import numpy as np
    import torch

    from asr import audio
    from asr.decode import greedy
    from asr.transcribe import emissions, long_emissions, transcribe_long
    from conftest import random_words, spaced_words

    recognizer = spaced_model
    rng = np.random.default_rng(5)
    words = random_words(rng, 150)
    wave, truth = spaced_words(words, rng)
    sf.write(tmp_path / "long.flac", wave, 16000)
    seconds = len(wave) / 16000
    assert seconds > 90
    # 5 s windows: ~20 windows and as many decoding cuts, inside words' pauses or not at all
    long, samples = long_emissions(recognizer, lambda: audio.stream(tmp_path / "long.flac", 1.7), 5.0, 1.0)
    whole, n = emissions(recognizer, [torch.from_numpy(audio.load(tmp_path / "long.flac"))])
    whole = whole[0, :int(n[0])]
    assert samples == len(wave) and long.shape == whole.shape
    # Two different computations (each window's LSTM sees only its own context; another CPU sums
    # in another order), so not bit-equal. How far a frame near a window's edge moves depends on
    # the trained model (measured: up to 0.08 in probability), but almost every frame stays put
    # (measured: at most 0.04% move by over 0.01; stitched one frame out of phase, 32-39% would),
    # and the best class may change only where the whole file's top two were close.
    moved = (long.exp() - whole.exp()).abs().amax(-1) > 0.01
    assert moved.float().mean() < 0.01
    top2 = whole.topk(2, -1).values
    flipped = long.argmax(-1) != whole.argmax(-1)
    assert (top2[flipped, 0] - top2[flipped, 1] < 0.5).all()
    lengths = torch.tensor([len(whole)])
    assert greedy(long[None], lengths, recognizer.vocab)[0].text == greedy(whole[None], lengths, recognizer.vocab)[0].text
    result = transcribe_long(recognizer, tmp_path / "long.flac", timestamps=True, window_seconds=5.0)
    assert result.text == " ".join(words)  # nothing lost or doubled at ~20 cuts
    assert [w.text for w in result.words] == words
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and 0 <= starts[0] and result.words[-1].end <= seconds
    assert max(abs(w.start - t[0]) for w, t in zip(result.words, truth)) < 0.1
    # through transcribe(): a file longer than a window and its context takes this path
    assert next(transcribe(recognizer, [tmp_path / "long.flac"], window_seconds=5.0)).text == result.text


def test_pause_cuts_fall_in_the_longest_pause_or_at_the_limit():
    import torch

    from asr.text import Vocabulary
    from asr.transcribe import pause_cuts

    vocab = Vocabulary()
    letter, blank = vocab.index["A"], vocab.blank
    ids = [letter] * 10 + [blank] * 3 + [letter] * 4 + [blank] * 5 + [letter] * 3  # 25 frames
    log_probs = torch.nn.functional.one_hot(torch.tensor(ids), len(vocab)).float().log()
    assert pause_cuts(log_probs, vocab, 30) == [0, 25]
    assert pause_cuts(log_probs, vocab, 22) == [0, 19, 25]  # the middle of the longer pause (17..21)
    assert pause_cuts(log_probs, vocab, 20) == [0, 11, 25]  # that pause runs past the limit: the other
    assert pause_cuts(log_probs[:10], vocab, 4) == [0, 4, 8, 10]  # no pause: at the limit


# -- the Python API -----------------------------------------------------------------------------

def test_python_api_transcribes_files_and_samples_in_batches(memorised, tmp_path):
    import asr
    from asr.audio import AudioError

    model = asr.load_model(memorised.exp / "best.pt", device="cpu")
    utt = read_manifest(memorised.dev)[1]  # what the tiny model has learnt, exactly
    assert utt.text == "BAD CAB"
    shutil.copy(utt.audio_filepath, tmp_path / "x.wav")
    wave, _ = sf.read(utt.audio_filepath, dtype="float32")
    one = model.transcribe(tmp_path / "x.wav")
    assert one.text == "BAD CAB" and [w.text for w in one.words] == ["BAD", "CAB"]
    assert all(0 <= w.start < w.end <= one.duration and 0 < w.confidence <= 1 for w in one.words)
    # Samples in memory: numpy at another rate, integer PCM, a (channels, samples) torch tensor.
    import soxr

    assert model.transcribe(soxr.resample(wave, 16000, 8000), sample_rate=8000).text == "BAD CAB"
    assert model.transcribe((wave * 32767).astype(np.int16), sample_rate=16000).text == "BAD CAB"
    assert model.transcribe(torch.from_numpy(np.stack([wave, wave])), sample_rate=16000).text == "BAD CAB"
    # A list: one result each, in order; a bad one carries its error and the rest go on.
    results = model.transcribe([tmp_path / "x.wav", tmp_path / "missing.wav", wave[:0], wave], sample_rate=16000)
    assert [r.text for r in results] == ["BAD CAB", None, None, "BAD CAB"]
    assert "missing.wav: no such file" in results[1].error and results[2].error.startswith("array[2]: ")
    assert results[3].path == "array[3]"
    with pytest.raises(AudioError, match="missing.wav: no such file"):
        model.transcribe(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="sample_rate"):
        model.transcribe(wave)
    assert model.evaluate(memorised.dev).score.wer == 0.0


def test_readme_python_example_runs_as_written(tmp_path):
    """The ```python block of README.md, run in a folder holding the files it names."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = readme.split("### From Python\n\n```python\n", 1)[1].split("```", 1)[0]
    utts = write_tone_corpus(tmp_path / "audio", ["HELLO WORLD"])
    shutil.copy(utts[0].audio_filepath, tmp_path / "speech.wav")
    write_manifest(tmp_path / "test.jsonl", utts)
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any("failed: " in line and "missing.wav: no such file" in line for line in lines)
    assert lines[-1].startswith("WER ") and "(1 utterances)" in lines[-1]


def test_evaluate_reads_segments_of_a_longer_recording(memorised, tmp_path):
    """A manifest with NeMo's `offset` (as `asr prepare kaldi` writes from `segments`)."""
    utts = read_manifest(memorised.dev)
    waves = [sf.read(u.audio_filepath, dtype="float32")[0] for u in utts]
    gap = np.zeros(8000, np.float32)
    sf.write(tmp_path / "all.wav", np.concatenate([gap, waves[0], gap, waves[2], gap]), 16000)
    first, second = 0.5, 0.5 + len(waves[0]) / 16000 + 0.5
    segments = [Utterance(str(tmp_path / "all.wav"), len(waves[0]) / 16000, utts[0].text, first, "u1"),
                Utterance(str(tmp_path / "all.wav"), len(waves[2]) / 16000, utts[2].text, second, "u2")]
    write_manifest(tmp_path / "segments.jsonl", segments)
    result = evaluate(checkpoint.load_recognizer(memorised.exp / "best.pt"), tmp_path / "segments.jsonl")
    assert [u.hypothesis for u in result.utterances] == [utts[0].text, utts[2].text]
    assert result.score.wer == 0.0 and result.failed == []


def test_word_times_of_lexicon_words_and_a_word_that_cannot_be_timed(recognizer, memorised, tmp_path):
    """Timestamps of words a lexicon writes otherwise than its units ('cab' in lower case); a word
    that still cannot be timed fails its own file with one line, and the batch goes on."""
    from asr.decode import BeamConfig, BeamDecoder
    from asr.lm import build

    build([t.split() for t in MEMORISED], 2).write_arpa(tmp_path / "lm.arpa")
    (tmp_path / "lex.txt").write_text("cab\tC A B |\nBAD\tB A D |\nACE\tA C E |\nBED\tB E D |\n")
    decoder = BeamDecoder(recognizer.vocab, BeamConfig(lm=str(tmp_path / "lm.arpa"), lexicon=str(tmp_path / "lex.txt")))
    paths = [u.audio_filepath for u in read_manifest(memorised.dev)]
    results = list(transcribe(recognizer, paths, decoder=decoder, timestamps=True))
    assert [t.text for t in results] == ["cab", "BAD cab", "ACE BED"]
    assert [[w.text for w in t.words] for t in results] == [["cab"], ["BAD", "cab"], ["ACE", "BED"]]
    decoder.spellings["BAD"] = ["B", "Ä", "D"]  # as no lexicon the decoder reads can spell it
    results = list(transcribe(recognizer, paths, decoder=decoder, timestamps=True))
    assert [t.text for t in results] == ["cab", None, "ACE BED"]
    assert results[1].error == f"{paths[1]}: no word times: 'BAD' has 'Ä', not one of the model's units"


def test_a_phone_model_builds_its_lexicon_search_once_not_per_call(monkeypatch):
    """Greedy transcripts of a phone model come from a search of its lexicon, ~2 s to build for
    the packaged 74k words: built on the first call for that model, reused on the next."""
    from asr import transcribe as t
    from asr.config import Config, ModelConfig
    from asr.decode import BeamDecoder
    from asr.text import Vocabulary, read_lexicon

    def phone_model():
        vocab = Vocabulary(pronunciations=read_lexicon("CAT K AE T\nAT AE T\n", "lex"))
        config = Config(model=ModelConfig(hidden=8, layers=1, stack=1))
        features, model = checkpoint.build(config, vocab)
        return checkpoint.Recognizer(features, model.eval(), vocab, config)

    built = []
    monkeypatch.setattr(t, "BeamDecoder", lambda *a, **k: built.append(a[0]) or BeamDecoder(*a, **k))
    rec, waves = phone_model(), [torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, 8000).astype(np.float32))]
    first = recognize(rec, waves)
    assert recognize(rec, waves) == first
    list(transcribe(rec, [t.Samples("noise", waves[0], 16000)]))
    assert built == [rec.vocab]  # once, for all three calls
    other = phone_model()  # another model: its own search
    recognize(other, waves)
    assert built == [rec.vocab, other.vocab] and built[1] is not built[0]


def test_read_words_pronounces_spells_and_names_each_bad_line():
    from asr.text import Vocabulary, read_lexicon
    from asr.transcribe import read_words

    phones = Vocabulary(pronunciations=read_lexicon("CAT K AE T\nGOD G AO D\nLAY L EY\nA AH\n", "lex"))
    lines = ["# my words", "cat", "dog(2) D AO1 G  # CMUdict's form", "LAYLA", "R2D2", "ZED ZH EH D", "", "日本"]
    words, problems = read_words(phones, lines, "my.txt")
    assert words["CAT"] == [["K", "AE", "T"]]  # the lexicon's own
    assert words["DOG"] == [["D", "AO", "G"]]  # stress marks and (2) read
    assert words["LAYLA"] and not phones.foreign(words["LAYLA"][0])  # the G2P's
    assert problems == ["my.txt: line 5: 'R2D2' is not one word the model can spell ('R TWO D TWO' once normalised)",
                        "my.txt: line 6: 'ZED': 'ZH' is not one of the model's phones",
                        "my.txt: line 8: '日本' is not one word the model can spell ('' once normalised)"]
    letters = Vocabulary()
    words, problems = read_words(letters, ["cab", "bed B EH D"], "my.txt")
    assert words == {"CAB": [["C", "A", "B"]]}
    assert problems == ["my.txt: line 2: 'bed': a letter model spells words as written, not by a pronunciation"]


def test_your_words_make_a_word_the_lm_lacks_decodable(memorised, tmp_path):
    from asr.lm import build
    from asr.transcribe import load_model

    build([["BAD", "CAB"], ["CAB"]], 2).write_arpa(tmp_path / "lm.arpa")  # no ACE, no BED
    audio = [u.audio_filepath for u in read_manifest(memorised.dev) if u.text == "ACE BED"][0]
    plain = load_model(memorised.exp / "best.pt", lm=str(tmp_path / "lm.arpa"))
    assert "ACE" not in plain.transcribe(audio).text.split()
    yours = load_model(memorised.exp / "best.pt", lm=str(tmp_path / "lm.arpa"), words=["ace", "bed", "b3d"])
    assert yours.transcribe(audio).text == "ACE BED"
    assert yours.skipped_words == ["words: line 3: 'b3d' is not one word the model can spell "
                                   "('B THREE D' once normalised)"]
    # the command: each bad line is one line on stderr, and the rest are used
    (tmp_path / "words.txt").write_text("ACE\nBED\n東京\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "asr", "transcribe", audio, "--model", str(memorised.exp / "best.pt"),
                          "--lm", str(tmp_path / "lm.arpa"), "--words", str(tmp_path / "words.txt")],
                         capture_output=True, text=True)
    assert run.returncode == 0 and run.stdout.split("\t")[1].strip() == "ACE BED"
    assert f"{tmp_path / 'words.txt'}: line 3: '東京' is not one word" in run.stderr and "Traceback" not in run.stderr
    (tmp_path / "none.txt").write_text("42\n")
    run = subprocess.run([sys.executable, "-m", "asr", "transcribe", audio, "--model", str(memorised.exp / "best.pt"),
                          "--lm", str(tmp_path / "lm.arpa"), "--words", str(tmp_path / "none.txt")],
                         capture_output=True, text=True)
    assert run.returncode != 0 and "none of its words can be used" in run.stderr and "Traceback" not in run.stderr
