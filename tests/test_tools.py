"""The tools under tools/ run and print what their docs promise."""

import json
import shutil
import subprocess
import sys

import pytest

from asr.data import read_manifest
from conftest import ROOT


def _tool(*args):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=300)


def test_plot_training_draws_a_run(memorised, tmp_path):
    run = _tool(ROOT / "tools" / "plot_training.py", memorised.exp / "log.jsonl", "--out", tmp_path / "curve.png")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "empty.jsonl").write_text("")
    run = _tool(ROOT / "tools" / "plot_training.py", tmp_path / "empty.jsonl", "--out", tmp_path / "x.png")
    assert run.returncode == 1 and "no training lines" in run.stderr


@pytest.mark.slow
def test_bench_train_times_the_step_and_the_bare_lstm():
    run = _tool(ROOT / "tools" / "bench_train.py", "--config", ROOT / "conf" / "tiny.yaml", "--batch", 2,
                "--seconds", 1, "--steps", 2, "--warmup", 1)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert any(line.startswith("asr training step") and "audio-s/s" in line for line in lines), run.stdout
    assert any(line.startswith("bare nn.LSTM fwd+bwd") for line in lines)
    assert any(line.startswith("ratio: ") for line in lines)
    useful = next(line for line in lines if line.startswith("useful work: "))
    assert "GFLOP/s" in useful and "of a 2048^3 matmul's" in useful


@pytest.mark.slow
def test_bench_transcribe_prints_both_real_time_factors_and_the_long_recordings_memory(memorised, tmp_path):
    run = _tool(ROOT / "tools" / "bench_transcribe.py", "--manifest", memorised.dev, "--model",
                memorised.exp / "best.pt", "--hour", "--hour-seconds", 45)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("3 files, ") and lines[1] == "decoding: greedy"
    assert lines[2].startswith("model load excluded: ") and " RTF " in lines[2]
    assert lines[3].startswith("end to end (`asr transcribe` on the 3 files): ") and "peak RSS" in lines[3]
    assert lines[4].startswith("one recording of 0.8 min: ") and "peak RSS" in lines[4], lines


def test_results_puts_our_test_figures_beside_the_an4_peers(memorised, tmp_path):
    import shutil

    exp = tmp_path / "exp"
    shutil.copytree(memorised.exp, exp)
    (exp / "decode").mkdir()
    for name, line in [("greedy_dev", "WER 20.00% CER 9.00% (100 utterances)"), ("lm_dev", "WER 10.00% CER 5.00% (100 utterances)"),
                       ("greedy_test", "WER 12.34% CER 5.67% (130 utterances)"), ("lm_test", "WER 7.10% CER 3.50% (130 utterances)")]:
        (exp / "decode" / f"{name}.txt").write_text(f"asr: something first\n{line}\n")
    run = _tool(ROOT / "tools" / "results.py", exp, "--sets", "dev", "test", "--title", "AN4", "--out",
                tmp_path / "RESULTS.md", "--peers", "an4")
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "RESULTS.md").read_text().splitlines()
    assert "| test | 12.34% | 5.67% | 7.10% | 3.50% |" in lines
    table = lines[lines.index("| system | WER | CER | source |"):]
    assert "| ESPnet2 Transformer, BPE 30, speed perturbation, + LM (egs2/an4/asr1/README.md) | 7.4 | 3.6 | published |" in table
    assert "| ours, greedy | 12.34% | 5.67% | this run |" in table and "| ours, beam + LM | 7.10% | 3.50% | this run |" in table
    # GPU times only where they are about the recipe: AN4's own, not LibriSpeech's 960 h
    assert any("this recipe's 60 epochs took 147 s" in line for line in lines)
    assert not any("960 h" in line for line in lines)


def test_results_puts_other_systems_reports_in_columns_beside_ours(memorised, tmp_path):
    import shutil

    exp = tmp_path / "exp"
    shutil.copytree(memorised.exp, exp)
    (exp / "decode").mkdir()
    for kind in ("greedy", "lm"):
        (exp / "decode" / f"{kind}_test.txt").write_text("WER 30.00% CER 15.00% (10 utterances)\n")
    # a peer tool's report keeps its scores under "score"; `asr evaluate --report` at the top
    (tmp_path / "ps_test.json").write_text(json.dumps({"score": {"wer": 50.714, "cer": 40.971}, "utterances": []}))
    (tmp_path / "old_test.json").write_text(json.dumps({"wer": 92.0, "cer": 61.5, "utterances": []}))
    (tmp_path / "old_dev.json").write_text(json.dumps({"wer": None, "cer": None, "utterances": []}))  # nothing scored
    run = _tool(ROOT / "tools" / "results.py", exp, "--sets", "test", "dev", "--title", "T", "--out", tmp_path / "R.md",
                "--column", f"PocketSphinx={tmp_path}/ps_{{set}}.json", "--column", f"before={tmp_path}/old_{{set}}.json")
    assert run.returncode == 0, run.stderr
    lines = (tmp_path / "R.md").read_text().splitlines()
    assert "| set | greedy WER | greedy CER | beam + LM WER | beam + LM CER | PocketSphinx WER / CER | before WER / CER |" in lines
    assert "| test | 30.00% | 15.00% | 30.00% | 15.00% | 50.71% / 40.97% | 92.00% / 61.50% |" in lines
    assert "| dev | n/a | n/a | n/a | n/a | n/a | n/a |" in lines
    # a recipe named no GPU measurement (the Hardware line names the machine's own GPU, if any)
    assert not any("on one H100" in line.lower() for line in lines)
    bad = _tool(ROOT / "tools" / "results.py", exp, "--sets", "test", "--title", "T", "--out", tmp_path / "R.md",
                "--column", "PocketSphinx")
    assert bad.returncode == 2 and "LABEL=PATTERN" in bad.stderr


@pytest.mark.skipif(not shutil.which("flite"), reason="flite is not installed (apt-get install flite)")
def test_synthesize_writes_a_folder_that_prepare_folder_reads(tmp_path):
    from asr.prepare import prepare

    (tmp_path / "text.txt").write_text("Please hold the line.\nPress 2 for sales.\n\nThe line is busy.\n")
    run = _tool(ROOT / "tools" / "synthesize.py", "--text", tmp_path / "text.txt", "--out", tmp_path / "synth",
                "--voices", "flite:kal16", "flite:slt")
    assert run.returncode == 0, run.stderr
    assert "3 sentences in 2 voices (0 failed)" in run.stdout
    result = prepare("folder", tmp_path / "synth", tmp_path / "out")
    texts = sorted(u.text for s in result.splits for u in read_manifest(s.manifest))
    assert texts == ["PLEASE HOLD THE LINE", "PRESS TWO FOR SALES", "THE LINE IS BUSY"] and not result.problems
    # dev and test sentences, and the shortest, can be left out of the text
    (tmp_path / "test.jsonl").write_text(json.dumps({"audio_filepath": "t.wav", "duration": 1.0,
                                                     "text": "press two for sales"}) + "\n")
    (tmp_path / "text.txt").write_text((tmp_path / "text.txt").read_text() + "Hold on.\n")
    run = _tool(ROOT / "tools" / "synthesize.py", "--text", tmp_path / "text.txt", "--out", tmp_path / "kept",
                "--voices", "flite:kal16", "--min-words", 3, "--exclude", tmp_path / "test.jsonl")
    assert run.returncode == 0, run.stderr
    assert "2 sentences in 1 voices (0 failed)" in run.stdout
    spoken = sorted(p.read_text().strip() for p in (tmp_path / "kept").rglob("*.txt"))
    assert spoken == ["Please hold the line.", "The line is busy."]
    run = _tool(ROOT / "tools" / "synthesize.py", "--text", tmp_path / "text.txt", "--out", tmp_path / "x",
                "--voices", "festival:kal")
    assert run.returncode == 1 and "expected flite:NAME" in run.stderr


def test_narrowband_writes_8khz_copies_and_reports_a_bad_file(tmp_path):
    import numpy as np
    import soundfile as sf

    t = np.arange(16000) / 16000
    sf.write(tmp_path / "a.wav", (0.3 * np.sin(2 * np.pi * 1000 * t) + 0.3 * np.sin(2 * np.pi * 6000 * t)), 16000)
    (tmp_path / "b.wav").write_bytes(b"not audio")
    lines = [{"audio_filepath": str(tmp_path / n), "duration": 1.0, "text": "HELLO"} for n in ("a.wav", "b.wav")]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    run = _tool(ROOT / "tools" / "narrowband.py", "--manifest", tmp_path / "m.jsonl", "--out", tmp_path / "nb")
    assert run.returncode == 0, run.stderr
    assert "b.wav" in run.stderr and len(run.stderr.strip().splitlines()) == 1
    [u] = read_manifest(tmp_path / "nb" / "manifest.jsonl")
    wave, rate = sf.read(u.audio_filepath)
    assert rate == 8000 and len(wave) == 8000 and u.text == "HELLO"
    spectrum = np.abs(np.fft.rfft(wave))
    assert spectrum[1000] > 1000 and spectrum[2000:].max() < 0.01 * spectrum[1000]  # 6 kHz filtered out, not aliased to 2 kHz


def test_pocketsphinx_lm_reads_the_binary_as_pocketsphinx_scores_it(tmp_path):
    pocketsphinx = pytest.importorskip("pocketsphinx")
    import math
    import os
    import random

    from asr.lm import read_arpa

    binary = os.path.join(pocketsphinx.get_model_path(), "en-us", "en-us-phone.lm.bin")  # small: 43 phones
    run = _tool(ROOT / "tools" / "pocketsphinx_lm.py", binary, tmp_path / "phone.arpa.gz")
    assert run.returncode == 0, run.stderr
    assert "1-grams 43, 2-grams 1,509, 3-grams 21,837" in run.stdout
    model = read_arpa(tmp_path / "phone.arpa.gz")
    theirs = pocketsphinx.NGramModel.readfile(binary)
    words = [w for w in model.vocabulary if w not in ("<s>", "<UNK>")]
    rng = random.Random(0)
    grams = rng.sample(sorted(model.probs[2]), 300) + [tuple(rng.choice(words) for _ in range(3)) for _ in range(300)]
    for gram in grams:  # seen trigrams and (mostly) backed-off random ones
        ours = math.log10(model.prob(gram[:-1], gram[-1]))
        their = theirs.prob(list(reversed(gram))) * math.log10(1.0001)  # newest word first, log base 1.0001
        assert ours == pytest.approx(their, abs=1e-4), gram  # pocketsphinx rounds to whole log units
    (tmp_path / "not.bin").write_bytes(b"hello")
    run = _tool(ROOT / "tools" / "pocketsphinx_lm.py", tmp_path / "not.bin", tmp_path / "x.arpa")
    assert run.returncode == 1 and "not a sphinx trie LM" in run.stderr and "not.bin" in run.stderr


@pytest.mark.slow
def test_bench_onnx_times_both_paths_on_the_same_clips(memorised, tmp_path):
    pytest.importorskip("onnxruntime")
    from asr.checkpoint import export_onnx

    export_onnx(memorised.exp / "best.pt", tmp_path / "m.onnx")
    run = _tool(ROOT / "tools" / "bench_onnx.py", "--model", memorised.exp / "best.pt", "--onnx", tmp_path / "m.onnx",
                "--manifest", memorised.dev, "--repeat", 1)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("3 clips") and lines[1].startswith("pytorch") and lines[2].startswith("onnxruntime")
    assert float(lines[3].rsplit(" ", 1)[1]) < 1e-4  # the largest log-probability difference


def test_sweep_beam_scores_each_setting_on_the_same_emissions(memorised, tmp_path):
    texts = [u.text for u in read_manifest(memorised.dev)]
    (tmp_path / "text.txt").write_text("\n".join(texts) + "\n")
    from asr.lm import build, read_sentences

    build(read_sentences([tmp_path / "text.txt"], "words"), 2).write_arpa(tmp_path / "lm.arpa")
    run = _tool(ROOT / "tools" / "sweep_beam.py", "--model", memorised.exp / "best.pt", "--lm", tmp_path / "lm.arpa",
                "--manifest", memorised.dev, "--decode-workers", 1, "8", "8:1:10")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"{memorised.dev}: {len(texts)} utterances; --lm-weight 1 --word-score 0")
    assert lines[1] == "beam\ttokens\tthreshold\tWER\tCER\tsearch s\tsearched again"
    rows = [line.split("\t") for line in lines[2:]]
    assert [r[:3] for r in rows] == [["8", "0", "25"], ["8", "1", "10"]]
    assert rows[0][6] == "0"  # its beams all ended words
    assert rows[0][3] == "0.00"  # the memorised model reads its dev set right with a beam too
    run = _tool(ROOT / "tools" / "sweep_beam.py", "--manifest", memorised.dev, "8:-1")
    assert run.returncode == 2 and "8:-1: beam_size_token must be 0 (every unit) or more" in run.stderr
    (tmp_path / "gone.jsonl").write_text(json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0,
                                                     "text": "A"}) + "\n")
    run = _tool(ROOT / "tools" / "sweep_beam.py", "--model", memorised.exp / "best.pt", "--lm", tmp_path / "lm.arpa",
                "--manifest", tmp_path / "gone.jsonl", "8")
    assert run.returncode == 1 and run.stderr.strip() == f"sweep_beam: {tmp_path / 'gone.wav'}: no such file"


def test_curve_prints_a_dash_where_a_run_had_no_dev_set(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps({"epoch": 1, "step": 10, "train_loss": 2.5, "dev_loss": None, "dev_wer": None,
                               "dev_cer": None, "seconds": 60.0}) + "\n")
    run = _tool(ROOT / "tools" / "curve.py", log)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1] == "| 1 | 10 | 2.500 | - | - | - | 1.0 |"


@pytest.mark.skipif(not shutil.which("pocketsphinx_continuous"), reason="apt-get install pocketsphinx pocketsphinx-en-us")
def test_peer_pocketsphinx_normalises_references_and_reports_what_failed(tmp_path):
    import numpy as np
    import soundfile as sf

    from asr.data import Utterance, write_manifest

    sf.write(tmp_path / "quiet.wav", np.zeros(8000, np.float32), 16000)  # silence: PocketSphinx says nothing
    write_manifest(tmp_path / "m.jsonl", [Utterance(str(tmp_path / "quiet.wav"), 0.5, "Hello, world."),
                                          Utterance(str(tmp_path / "gone.wav"), 0.5, "lost")])
    run = _tool(ROOT / "tools" / "peer_pocketsphinx.py", "--manifest", tmp_path / "m.jsonl",
                "--report", tmp_path / "r.json", "--jobs", 1)
    assert run.returncode == 1 and "gone.wav: no such file" in run.stderr, run.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["failed"]) == 1 and "gone.wav" in report["failed"][0]
    assert report["score"]["chars"] == 11 and "1 failed, not scored" in run.stdout  # "HELLO WORLD", not "Hello, world."


def test_compare_runs_puts_runs_side_by_side_and_bolds_the_best(tmp_path):
    for run, figures in {"a": {"greedy_dev": 20.0, "lm_dev": 10.0, "greedy_test": 30.0},
                         "b": {"greedy_dev": 15.5, "lm_dev": 12.25, "greedy_test": None}}.items():  # None: nothing scored
        (tmp_path / run / "decode").mkdir(parents=True)
        for name, value in figures.items():
            (tmp_path / run / "decode" / f"{name}.json").write_text(json.dumps({"wer": value, "cer": 1.0}))
    run = _tool(ROOT / "tools" / "compare_runs.py", tmp_path / "a", tmp_path / "b", "--sets", "dev", "test")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[2] == "| dev | 20.00 / **10.00** | **15.50** / 12.25 |"
    assert lines[3] == "| test | **30.00** / - | - / - |"
    run = _tool(ROOT / "tools" / "compare_runs.py", tmp_path / "a", tmp_path / "nothing", "--sets", "dev")
    assert run.returncode == 2 and "no decode/ folder in" in run.stderr


@pytest.mark.skipif(not shutil.which("t2p"), reason="flite is not installed (apt-get install flite)")
def test_lexicon_pronounces_the_lms_and_the_transcripts_words(tmp_path):
    pytest.importorskip("pocketsphinx")  # its CMUdict
    flite = shutil.which("t2p") is not None
    rows = [{"audio_filepath": "a.wav", "duration": 1.0, "text": "A cat, K 2!" + (" Zorblax" if flite else "")}]
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "lm.arpa").write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n-1\tQUAY\n-2\tDOG\n\n\\end\\\n")
    run = _tool(ROOT / "tools" / "lexicon.py", "--lm", tmp_path / "lm.arpa", "--manifests", tmp_path / "m.jsonl",
                "--out", tmp_path / "lex.txt")
    assert run.returncode == 0, run.stderr
    lexicon = (tmp_path / "lex.txt").read_text().splitlines()
    # CMUdict's pronunciations, the commonest first, no stress marks; the letter names; flite's guesses
    assert lexicon.index("A AH") < lexicon.index("A EY") and "A. EY" in lexicon and "Z. Z IY" in lexicon
    assert {"CAT K AE T", "QUAY K IY", "DOG D AO G", "TWO T UW"} <= set(lexicon)
    # the LM's likeliest words first, then the transcripts', then the letter names
    order = list(dict.fromkeys(line.split()[0] for line in lexicon))
    assert order[:2] == ["QUAY", "DOG"] and order[-1] == "Z." and order.index("CAT") < order.index("A.")
    assert f"{6 + 26 + flite:,} words" in run.stdout
    if flite:
        assert any(line.startswith("ZORBLAX Z") for line in lexicon) and "1 not in CMUdict spelt by flite" in run.stdout
