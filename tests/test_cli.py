"""The `asr` command end to end, on audio the tests make."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from conftest import ROOT, tone_speech

FINAL_LINE = re.compile(r"^WER \d+\.\d\d% CER \d+\.\d\d% \(\d+ utterances\)$")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An FSDD-shaped corpus of tone speech, prepared and trained through the command."""
    root = tmp_path_factory.mktemp("cli")
    rec = root / "fsdd" / "recordings"
    rec.mkdir(parents=True)
    words = ["ZERO", "ONE", "TWO"]
    for digit, word in enumerate(words):
        for speaker in ["george", "theo", "yweweler"]:
            sf.write(rec / f"{digit}_{speaker}_0.wav", tone_speech(word, 8000, seed=digit), 8000)
    assert main(["prepare", "fsdd", str(root / "fsdd"), str(root / "data")]) == 0
    assert main(["train", "--config", str(ROOT / "conf" / "tiny.yaml"), "--train", str(root / "data" / "train.jsonl"),
                 "--dev", str(root / "data" / "dev.jsonl"), "--out", str(root / "exp"), "--max-steps", "4",
                 "--set", "train.batch_seconds=2"]) == 0
    return root


def test_train_leaves_checkpoints_with_the_model_state(trained):
    import torch

    ckpt = torch.load(trained / "exp" / "last.pt", weights_only=True)
    assert "lstm.weight_ih_l0" in ckpt["model"] and ckpt["step"] == 4
    assert (trained / "exp" / "best.pt").exists()


def test_evaluate_prints_the_final_line_and_writes_a_report(trained, capsys):
    report = trained / "report.json"
    assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"),
                 "--manifest", str(trained / "data" / "test.jsonl"), "--report", str(report)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "decoding: greedy" and FINAL_LINE.match(out[-1]), out
    data = json.loads(report.read_text())
    assert data["decoding"] == "greedy"
    assert len(data["utterances"]) == 3
    assert {"wer", "cer", "substitutions", "deletions", "insertions"} <= data.keys()
    per = [u["score"] for u in data["utterances"]]
    for key in ("substitutions", "deletions", "insertions", "words"):
        assert sum(p[key] for p in per) == data[key]
    # the worst utterances first, each reference over its hypothesis
    blocks = report.with_suffix(".alignments.txt").read_text().split("\n\n")
    errors = [int(re.search(r"\((\d+) sub, (\d+) del, (\d+) ins", b).group(1)) for b in blocks if b.strip()]
    assert len(errors) == 3 and all(b.splitlines()[1].startswith("REF:") for b in blocks if b.strip())
    totals = [sum(map(int, re.search(r"\((\d+) sub, (\d+) del, (\d+) ins", b).groups())) for b in blocks if b.strip()]
    assert totals == sorted(totals, reverse=True)


def test_evaluate_markdown_is_a_table_row(trained, capsys):
    manifest = str(trained / "data" / "test.jsonl")
    assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"), "--manifest", manifest,
                 "--format", "markdown"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("| manifest | utterances | WER | CER |") and lines[1].startswith("|---|")
    cells = [c.strip() for c in lines[2].strip("|").split("|")]
    assert cells[0] == manifest and cells[1] == "3" and re.fullmatch(r"\d+\.\d\d%", cells[2])


def test_transcribe_reads_folders_patterns_and_paths_on_stdin(trained, tmp_path, capsys, monkeypatch):
    import io

    for rel in ["a/one.wav", "a/b/two.FLAC", "c/three.wav"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        sf.write(tmp_path / rel, tone_speech("ONE"), 16000)
    sf.write(tmp_path / "a" / "b" / "four.sph", tone_speech("ONE"), 16000, format="NIST", subtype="PCM_16")  # AN4's
    (tmp_path / "a" / "notes.txt").write_text("not audio")
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{tmp_path / 'c' / 'three.wav'}\n\n"))
    code = main(["transcribe", "--model", str(trained / "exp" / "best.pt"), str(tmp_path / "a"),
                 str(tmp_path / "**" / "three.wav"), "-", str(tmp_path / "empty"), str(tmp_path / "nothing*.wav")])
    out, err = capsys.readouterr()
    assert code == 1  # two inputs named no file
    assert [line.split("\t")[0] for line in out.splitlines()] == [
        str(tmp_path / "a" / "b" / "four.sph"), str(tmp_path / "a" / "b" / "two.FLAC"), str(tmp_path / "a" / "one.wav"),
        str(tmp_path / "c" / "three.wav"),
        str(tmp_path / "c" / "three.wav")]
    assert err.splitlines() == [f"asr: error: {tmp_path / 'empty'}: a folder with no audio files "
                                "(.wav, .flac, .ogg, .oga, .mp3, .aiff, .aif, .au, .opus, .sph, .nist)",
                                f"asr: error: {tmp_path / 'nothing*.wav'}: no file matches this pattern"]


def test_an_exported_model_is_the_default_with_its_lm(trained, tmp_path, capsys, monkeypatch):
    import torch

    from asr import checkpoint

    (tmp_path / "text.txt").write_text("zero one two\none two\ntwo zero\n")
    lm = tmp_path / "lm2.v1.arpa"  # the copy beside the model keeps only its format's suffix: default.lm.arpa
    assert main(["lm", "build", "--text", str(tmp_path / "text.txt"), "--order", "2", "--out", str(lm)]) == 0
    out = tmp_path / "pkg" / "default.pt"
    assert main(["export", str(trained / "exp" / "best.pt"), str(out), "--lm", str(lm),
                 "--lm-weight", "0.5", "--word-score", "-1", "--beam", "30", "--beam-tokens", "4", "--beam-threshold", "9"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(f"{out}: ")
    payload = torch.load(out, weights_only=True)
    assert all(v.dtype == torch.float16 for v in payload["model"].values() if v.is_floating_point())
    assert "optimizer" not in payload and (tmp_path / "pkg" / "default.lm.arpa").exists()
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL", out)
    recognizer = checkpoint.load_recognizer()
    assert recognizer.decoding.lm == str(tmp_path / "pkg" / "default.lm.arpa")
    assert (recognizer.decoding.lm_weight, recognizer.decoding.word_score) == (0.5, -1.0)
    assert (recognizer.decoding.beam_size, recognizer.decoding.beam_size_token, recognizer.decoding.beam_threshold) == (30, 4, 9)
    sf.write(tmp_path / "one.wav", tone_speech("ONE"), 16000)
    results = {}
    for flags in ([], ["--greedy"], ["--model", str(trained / "exp" / "best.pt")]):
        assert main(["transcribe", str(tmp_path / "one.wav"), *flags]) == 0
        results[" ".join(flags[:1])] = capsys.readouterr().out
    # fp16 weights transcribe as the fp32 checkpoint does; the LM only picks among the LM's words
    assert results["--greedy"] == results["--model"]
    assert set(results[""].split("\t")[1].split()) <= {"ZERO", "ONE", "TWO"}
    monkeypatch.setattr(checkpoint, "DEFAULT_MODEL", tmp_path / "none.pt")
    assert main(["transcribe", str(tmp_path / "one.wav")]) == 1
    assert capsys.readouterr().err.strip() == (
        f"asr: error: no --model given, and the default model {tmp_path / 'none.pt'} is not installed")


def test_lm_build_then_beam_decoding_with_it(trained, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("zero one two\none two\ntwo zero\n")
    assert main(["lm", "build", "--text", str(tmp_path / "text.txt"), "--order", "3", "--out",
                 str(tmp_path / "lm.arpa"), "--lexicon", str(tmp_path / "lexicon.txt")]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{tmp_path / 'lm.arpa'}: order 3 from 7 words; 1-grams 6, 2-grams ")
    assert out[1] == f"{tmp_path / 'lexicon.txt'}: 3 words"
    for extra, search in (([], "beam 50 (every unit, threshold 25)"),
                          (["--lexicon", str(tmp_path / "lexicon.txt"), "--beam", "8", "--beam-tokens", "3"],
                           "beam 8 (3 units a frame, threshold 25)")):
        assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"), "--manifest",
                     str(trained / "data" / "test.jsonl"), "--lm", str(tmp_path / "lm.arpa"), *extra]) == 0
        out = capsys.readouterr().out.strip().splitlines()
        assert out[0] == f"decoding: {search} + LM lm.arpa (--lm-weight 1 --word-score 0)" and FINAL_LINE.match(out[-1])
    assert main(["lm", "build", "--text", str(tmp_path / "none.txt"), "--out", str(tmp_path / "x.arpa")]) == 1
    assert capsys.readouterr().err.strip() == f"asr: error: {tmp_path / 'none.txt'}: cannot read (No such file or directory)"


def test_transcribe_json_has_words_and_duration(trained, tmp_path, capsys):
    sf.write(tmp_path / "one.wav", tone_speech("ONE"), 16000)
    assert main(["transcribe", str(tmp_path / "one.wav"), "--model", str(trained / "exp" / "best.pt"),
                 "--format", "json"]) == 0
    entry = json.loads(capsys.readouterr().out)
    assert entry.keys() == {"path", "text", "duration", "rtf", "words"} and entry["path"] == str(tmp_path / "one.wav")
    assert 0 < entry["rtf"] < 10
    assert entry["duration"] == pytest.approx(len(tone_speech("ONE")) / 16000, abs=1e-3)
    assert [w["word"] for w in entry["words"]] == entry["text"].split()


def test_transcribe_captions_one_file_per_input(trained, tmp_path, capsys):
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", tone_speech("ONE TWO"), 16000)
    files = [str(tmp_path / "a.wav"), str(tmp_path / "b.wav")]
    model = ["--model", str(trained / "exp" / "best.pt")]
    assert main(["transcribe", *files, *model, "--format", "srt"]) == 2  # a usage error
    assert "give --output-dir for several" in capsys.readouterr().err
    (tmp_path / "again").mkdir()
    sf.write(tmp_path / "again" / "a.wav", tone_speech("TWO"), 16000)  # the same name in another folder
    files.append(str(tmp_path / "again" / "a.wav"))
    assert main(["transcribe", *files, *model, "--format", "vtt", "--output-dir", str(tmp_path / "out")]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a-2.vtt", "a.vtt", "b.vtt"]
    assert (tmp_path / "out" / "a.vtt").read_text().startswith("WEBVTT\n")


def test_transcribe_reports_each_bad_file_and_carries_on(trained, tmp_path, capsys):
    good = tmp_path / "good.wav"
    sf.write(good, tone_speech("ONE"), 16000)
    surround = tmp_path / "surround.wav"
    sf.write(surround, np.tile(tone_speech("TWO", 192000)[:, None], (1, 6)), 192000, subtype="PCM_24")
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "text.wav").write_text("not audio\n")
    (tmp_path / "zero.wav").write_bytes(b"")
    sf.write(tmp_path / "whole.flac", tone_speech("ZERO ONE TWO"), 16000)
    data = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    bad = [tmp_path / n for n in ["missing.wav", "dir.wav", "text.wav", "zero.wav", "cut.flac"]]
    files = [good, *bad[:3], surround, *bad[3:]]
    code = main(["transcribe", *map(str, files), "--model", str(trained / "exp" / "best.pt")])
    out, err = capsys.readouterr()
    assert code == 1
    assert [line.split("\t")[0] for line in out.splitlines()] == [str(good), str(surround)]
    errors = err.strip().splitlines()
    assert len(errors) == len(bad)
    for path in bad:  # a folder is reported when the inputs are read, the others as they come
        assert sum(line.startswith(f"asr: error: {path}: ") for line in errors) == 1, (path, errors)


def test_broken_manifest_line_is_named(trained, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text((trained / "data" / "test.jsonl").read_text() + '{"audio_filepath": "x.wav"\n')
    assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"), "--manifest", str(manifest)]) == 1
    assert capsys.readouterr().err.strip() == f"asr: error: {manifest}:4: invalid JSON (Expecting ',' delimiter at column 27)"


def test_bad_model_and_config_are_one_line_errors(trained, tmp_path, capsys):
    (tmp_path / "junk.pt").write_bytes(b"junk")
    assert main(["transcribe", str(tmp_path / "x.wav"), "--model", str(tmp_path / "junk.pt")]) == 1
    (tmp_path / "c.yaml").write_text("model:\n  hiden: 3\n")
    assert main(["train", "--config", str(tmp_path / "c.yaml"), "--train", "t.jsonl", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "junk.pt" in err[0] and "unknown key" in err[1]


def test_usage_errors_exit_2(trained, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["transcribe"])
    assert e.value.code == 2
    model = ["--model", str(trained / "exp" / "best.pt")]
    for flags in (["--beam", "5", "--beam-threshold", "-1"], ["--beam", "5", "--lm-weight", "nan"], ["--batch-size", "0"]):
        assert main(["transcribe", str(tmp_path / "x.wav"), *model, *flags]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-3].startswith("asr: error: decoding options: ") and "must be finite numbers" in err[-2]
    assert err[-1] == "asr: error: --batch-size must be at least 1"
    for flags in (["--beam", "5"], ["--lm", str(tmp_path / "lm.arpa")], ["--lexicon", "lex.txt"], ["--lm-weight", "2"],
                  ["--word-score", "1"], ["--beam-threshold", "10"], ["--beam-tokens", "5"]):  # not one ignored
        assert main(["transcribe", str(tmp_path / "x.wav"), *model, "--greedy", *flags]) == 2
        assert capsys.readouterr().err.strip() == ("asr: error: decoding options: greedy decoding cannot go with an LM, "
                                                   "a lexicon, a beam, words or their settings: ask for one or the other")
    # options nothing would use, numbers that mean nothing: refused, even where greedy decoding follows
    for flags, problem in [(["--beam", "5", "--lexicon", "lex.txt"], "a lexicon or an LM weight needs an LM: give one"),
                           (["--beam", "5", "--lm-weight", "2"], "a lexicon or an LM weight needs an LM: give one"),
                           (["--lexicon", "lex.txt"], "a lexicon, an LM weight, a word score or beam pruning "
                                                      "needs beam search: give an LM or a beam"),
                           (["--beam-tokens", "3"], "beam pruning needs beam search"),
                           (["--beam", "5", "--beam-tokens", "-1"], "beam_size_token must be 0 (every unit) or more"),
                           (["--decode-workers", "0"], "workers must be >= 1"),
                           (["--decode-workers", "-2", "--beam", "5"], "workers must be >= 1"),
                           (["--beam-threshold", "-1"], "beam_threshold positive")]:
        assert main(["transcribe", str(tmp_path / "x.wav"), *model, *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert err.startswith("asr: error: decoding options: ") and problem in err, (flags, err)
    # tune-lm: weights checked before the acoustic model runs
    (tmp_path / "text.txt").write_text("zero one two\n")
    assert main(["lm", "build", "--text", str(tmp_path / "text.txt"), "--order", "1", "--out", str(tmp_path / "u.arpa")]) == 2
    assert capsys.readouterr().err.strip() == "asr: error: --order 1: the decoder loads n-gram models of order 2 to 6"
    for weights in (["--lm-weights", "1", "nan"], ["--word-scores", "inf"]):
        assert main(["tune-lm", *model, "--manifest", str(trained / "data" / "dev.jsonl"), "--lm", str(tmp_path / "lm.arpa"),
                     *weights]) == 2
        assert capsys.readouterr().err.strip() == "asr: error: --lm-weights and --word-scores must be finite numbers"
    assert main(["download", "librispeech", str(tmp_path / "src")]) == 2
    assert capsys.readouterr().err.strip() == "asr: error: nothing to download: give --subsets and/or --lm"


def test_the_installed_command_never_shows_a_traceback(trained, tmp_path):
    (tmp_path / "text.wav").write_text("not audio\n")
    command = Path(sys.executable).parent / "asr"  # the console script pip installed
    run = subprocess.run([str(command), "transcribe", str(tmp_path / "text.wav"),
                          "--model", str(trained / "exp" / "best.pt")], capture_output=True, text=True)
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().splitlines()[-1].startswith(f"asr: error: {tmp_path / 'text.wav'}: ")


def test_evaluate_scores_what_it_can_read_and_names_the_rest(trained, tmp_path, capsys):
    lines = (trained / "data" / "test.jsonl").read_text().splitlines()
    broken = json.loads(lines[0])
    broken["audio_filepath"] = str(tmp_path / "gone.wav")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    report = tmp_path / "report.json"
    assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"), "--manifest", str(manifest),
                 "--report", str(report)]) == 1
    out, err = capsys.readouterr()
    assert out.strip().splitlines()[-1].endswith("(2 utterances)")
    assert json.loads(report.read_text())["failed"] == [f"{tmp_path / 'gone.wav'}: no such file"]
    assert err.strip() == f"asr: error: {tmp_path / 'gone.wav'}: no such file (not scored)"


def test_evaluate_with_nothing_scored_gives_no_figure(trained, tmp_path, capsys):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0, "text": "ONE"}) + "\n")
    report = tmp_path / "report.json"
    for fmt, last in (("text", "WER n/a CER n/a (0 utterances)"), ("markdown", f"| {manifest} | 0 | n/a | n/a | 0 | 0 | 0 | 0 |")):
        assert main(["evaluate", "--model", str(trained / "exp" / "best.pt"), "--manifest", str(manifest),
                     "--format", fmt, "--report", str(report)]) == 1
        out, err = capsys.readouterr()
        assert out.strip().splitlines()[-1] == last
        assert err.strip() == f"asr: error: {tmp_path / 'gone.wav'}: no such file (not scored)"
    data = json.loads(report.read_text())
    assert data["utterances"] == [] and data["wer"] is None and data["cer"] is None


def test_export_refuses_settings_without_an_lm_and_an_lm_it_cannot_use(trained, tmp_path, capsys):
    best, out = str(trained / "exp" / "best.pt"), str(tmp_path / "m.pt")
    assert main(["export", best, out, "--lm-weight", "2", "--beam", "7"]) == 2  # nothing would keep them
    assert capsys.readouterr().err.strip() == (
        "asr: error: --lm-weight, --word-score and the --beam options are settings for the model's LM: give --lm")
    sf.write(tmp_path / "hello.wav", tone_speech("ONE"), 16000)
    (tmp_path / "text.txt").write_text("zero one two\n")
    assert main(["lm", "build", "--text", str(tmp_path / "text.txt"), "--order", "7", "--out", str(tmp_path / "7.arpa")]) == 0
    capsys.readouterr()
    for lm, problem in [(tmp_path / "hello.wav", "not an ARPA file"), (tmp_path, "is a directory, not an LM file"),
                        (tmp_path / "7.arpa", "order above 6")]:  # each would fail every transcription
        assert main(["export", best, out, "--lm", str(lm)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"asr: error: {lm}: {problem}"), err
    assert not list(tmp_path.glob("m.*"))  # no model, no copied LM


def test_set_is_repeatable_and_an_unwritable_out_is_one_line(trained, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    code = main(["train", "--config", str(ROOT / "conf" / "tiny.yaml"), "--train", str(trained / "data" / "train.jsonl"),
                 "--out", str(tmp_path / "file" / "exp"), "--set", "train.lr=1e-3", "--set", "model.hidden=8"])
    assert code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("asr: error: ") and str(tmp_path / "file") in err[0]


def test_repeated_set_options_accumulate():
    from asr.cli import _parser

    args = _parser().parse_args(["train", "--config", "c.yaml", "--out", "o", "--set", "a.b=1", "c.d=2", "--set", "e.f=3"])
    assert args.set == ["a.b=1", "c.d=2", "e.f=3"]


def test_train_needs_a_folder_and_a_config_from_somewhere(tmp_path, capsys):
    assert main(["train", "--config", str(ROOT / "conf" / "tiny.yaml")]) == 1
    assert "give --out DIR for a new run, or --resume DIR" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "run")]) == 1
    assert f"no --config given, and {tmp_path / 'run' / 'last.pt'} does not exist" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "a"), "--out", str(tmp_path / "b")]) == 1
    assert "give one folder" in capsys.readouterr().err


def test_resume_takes_the_config_from_the_run(tmp_path, tone_manifest, capsys):
    out = tmp_path / "run"
    assert main(["train", "--config", str(ROOT / "conf" / "tiny.yaml"), "--train", str(tone_manifest),
                 "--resume", str(out), "--max-steps", "2"]) == 0  # no last.pt yet: a fresh start
    assert "trained 2 steps" in capsys.readouterr().out
    assert main(["train", "--resume", str(out), "--max-steps", "3"]) == 0
    assert "trained 3 steps" in capsys.readouterr().out  # 2 before, 1 now
    lines = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in lines if "train_loss" in e] == [2, 3]  # the first run's epoch line kept


def test_train_refuses_a_manifest_with_bad_lines_unless_told_to_skip_them(tmp_path, tone_manifest, capsys, caplog):
    good = tone_manifest.read_text().splitlines()
    bad = ['{"audio_filepath": "a.wav", "duration": 1.0', '{"audio_filepath": "a.wav", "text": "A"}',
           '{"audio_filepath": 3, "duration": 1.0, "text": "A"}', '{"audio_filepath": "a.wav", "duration": -2, "text": "A"}',
           json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "duration": 1.0, "text": "CAB"})]
    manifest = tmp_path / "mixed.jsonl"
    manifest.write_text("\n".join(good[:3] + bad[:4] + good[3:] + bad[4:]) + "\n")
    command = ["train", "--config", str(ROOT / "conf" / "tiny.yaml"), "--train", str(manifest), "--max-steps", "2"]
    assert main([*command, "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"asr: error: {manifest}:4: invalid JSON (Expecting ',' delimiter at column 44) "
                   "(and 3 more bad lines); --skip-bad trains without them"]
    assert main([*command, "--out", str(tmp_path / "b"), "--skip-bad"]) == 0
    out = capsys.readouterr().out
    skipped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skipped: ")]
    assert [s.split(": ")[1] for s in skipped] == [f"{manifest}:{n}" for n in (4, 5, 6, 7)] + [str(manifest)]
    assert "missing key 'duration'" in skipped[1] and "'duration' must be a positive number" in skipped[3]
    assert f"{tmp_path / 'gone.wav'}: no such file" in skipped[4]
    assert "; 5 bad manifest lines or audio files left out" in out


def test_audio_that_is_bad_past_its_header_stops_training_or_is_skipped(tmp_path, tone_manifest, capsys, caplog):
    lines = tone_manifest.read_text().splitlines()
    first = json.loads(lines[0])
    sf.write(tmp_path / "whole.flac", sf.read(first["audio_filepath"])[0], 16000)
    whole = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(whole[: len(whole) // 2])  # its header still says 'whole'
    manifest = tmp_path / "cut.jsonl"
    manifest.write_text("\n".join([json.dumps({**first, "audio_filepath": str(tmp_path / "cut.flac")}), *lines]) + "\n")
    command = ["train", "--config", str(ROOT / "conf" / "tiny.yaml"), "--train", str(manifest), "--max-steps", "2",
               "--set", f"train.stats_utterances={len(lines) + 1}"]  # every file, the cut one too
    assert main([*command, "--out", str(tmp_path / "a")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"asr: error: {tmp_path / 'cut.flac'}: not a readable audio file"), err
    assert main([*command, "--out", str(tmp_path / "b"), "--skip-bad"]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    assert any(r.getMessage().startswith(f"skipped for the statistics: {tmp_path / 'cut.flac'}: ") for r in caplog.records)


def test_asking_for_a_gpu_where_there_is_none_is_one_line(trained, tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    sf.write(tmp_path / "one.wav", tone_speech("ONE"), 16000)
    assert main(["transcribe", str(tmp_path / "one.wav"), "--model", str(trained / "exp" / "best.pt"),
                 "--device", "cuda"]) == 1
    assert capsys.readouterr().err.strip() == (
        "asr: error: device 'cuda': no CUDA GPU is usable here (torch.cuda.is_available() is False)")


def test_tune_lm_chooses_a_frame_step_and_export_keeps_it(trained, tmp_path, capsys):
    import torch

    (tmp_path / "text.txt").write_text("zero one two\none two\ntwo zero\n")
    lm, best = str(tmp_path / "lm.arpa"), str(trained / "exp" / "best.pt")
    assert main(["lm", "build", "--text", str(tmp_path / "text.txt"), "--order", "2", "--out", lm]) == 0
    capsys.readouterr()
    assert main(["tune-lm", "--model", best, "--manifest", str(trained / "data" / "dev.jsonl"), "--lm", lm,
                 "--lm-weights", "0", "1", "--word-scores", "0", "--hops-ms", "10", "9"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "hop_ms\tlm_weight\tword_score\tWER\tCER"
    assert [line.split("\t")[:3] for line in out[1:5]] == [["10", "0", "0"], ["10", "1", "0"], ["9", "0", "0"], ["9", "1", "0"]]
    wers = {tuple(line.split("\t")[:3]): float(line.split("\t")[3]) for line in out[1:5]}
    hop, weight = out[5].split()[2], out[5].split()[4]
    assert out[5].startswith(f"best: --hop-ms {hop} --lm-weight {weight} --word-score 0: WER ")
    assert wers[(hop, weight, "0")] == min(wers.values())
    assert main(["export", best, str(tmp_path / "m.pt"), "--hop-ms", "9"]) == 0
    assert capsys.readouterr().out.strip().endswith("; frame step 9 ms")
    assert torch.load(tmp_path / "m.pt", weights_only=True)["config"]["features"]["hop_ms"] == 9.0
    for command in (["export", best, str(tmp_path / "m2.pt")], ["evaluate", "--model", best, "--manifest",
                                                               str(trained / "data" / "dev.jsonl")]):
        assert main([*command, "--hop-ms", "0"]) == 2
        assert capsys.readouterr().err.strip() == "asr: error: --hop-ms must be a positive number of milliseconds, not 0"
    assert not (tmp_path / "m2.pt").exists()
