from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr import audio
from asr.cli import main
from asr.data import read_manifest, write_manifest
from asr.prepare import PrepareError, prepare
from asr.prepare.folder import FolderSplit
from conftest import needs_shared


def tone(path, seconds=0.5, rate=16000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.1 * np.sin(np.arange(int(seconds * rate)) * 0.1).astype(np.float32), rate)


def manifests(result):
    return {s.name: read_manifest(s.manifest) for s in result.splits}


def test_ljspeech_layout_and_fixed_splits(tmp_path):
    src = tmp_path / "LJSpeech-1.1"
    rows = {
        "LJ001-0001": "Printing, in the only sense|Printing, in the only sense",
        "LJ002-0130": "raw|Twenty-one pounds.",
        "LJ002-0131": "raw|The dev clip",
        "LJ002-0200": "raw|The test clip",
        "LJ050-0001": "raw|Text only, no audio here",
    }
    (src / "wavs").mkdir(parents=True)
    (src / "metadata.csv").write_text("".join(f"{k}|{v}\n" for k, v in rows.items()))
    tone(src / "wavs" / "LJ001-0001.wav", 1.0, 22050)  # the published corpus: .wav
    for clip in ["LJ002-0130", "LJ002-0131", "LJ002-0200"]:
        tone(src / "wavs" / f"{clip}.flac", 0.5, 22050)  # the shared copy: .flac
    result = prepare("ljspeech", src, tmp_path / "out")
    m = manifests(result)
    assert [len(m[k]) for k in ("train", "dev", "test")] == [2, 1, 1]
    assert m["train"][0].text == "PRINTING IN THE ONLY SENSE"
    assert m["train"][1].text == "TWENTY ONE POUNDS"
    assert m["train"][0].duration == pytest.approx(1.0)
    assert m["test"][0].audio_filepath.endswith("LJ002-0200.flac")
    assert result.problems == []
    # Language-model text: every row, audio or not, but the dev and test rows.
    assert (tmp_path / "out" / "lm_text.txt").read_text().splitlines() == [
        "PRINTING IN THE ONLY SENSE", "TWENTY ONE POUNDS", "TEXT ONLY NO AUDIO HERE"]
    assert result.extras == [f"{tmp_path / 'out' / 'lm_text.txt'}\t3 sentences, 13 words (LM text: no dev or test row)"]


def test_fsdd_speakers_split_and_bad_names_reported(tmp_path):
    rec = tmp_path / "recordings"
    for name in ["0_george_0.wav", "7_nicolas_3.wav", "3_theo_1.wav", "9_yweweler_49.wav", "notes.wav"]:
        tone(rec / name, 0.4, 8000)
    result = prepare("fsdd", tmp_path, tmp_path / "out")
    m = manifests(result)
    assert [u.text for u in m["train"]] == ["ZERO", "SEVEN"]
    assert (tmp_path / "out" / "lm_text.txt").read_text() == "ZERO\nSEVEN\n"
    assert [u.text for u in m["dev"]] == ["THREE"] and [u.text for u in m["test"]] == ["NINE"]
    assert len(result.problems) == 1 and "notes.wav" in result.problems[0]


def test_librispeech_tree_reports_what_it_leaves_out(tmp_path):
    chapter = tmp_path / "LibriSpeech" / "dev-clean" / "84" / "121123"
    tone(chapter / "84-121123-0000.flac")
    tone(chapter / "84-121123-0001.flac")
    tone(chapter / "84-121123-0005.flac")  # audio without a transcript line
    (chapter / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO DO YOU HEAR\n84-121123-0001 BUT IN LESS THAN FIVE MINUTES\n84-121123-0002 MISSING AUDIO\n")
    other = tmp_path / "LibriSpeech" / "test-clean" / "1" / "2"
    tone(other / "1-2-0000.flac")
    (other / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")
    result = prepare("librispeech", tmp_path / "LibriSpeech", tmp_path / "out")
    m = manifests(result)
    assert sorted(m) == ["dev-clean", "test-clean"]
    assert [u.text for u in m["dev-clean"]] == ["GO DO YOU HEAR", "BUT IN LESS THAN FIVE MINUTES"]
    assert (tmp_path / "out" / "dev-clean.jsonl").exists()
    assert len(result.problems) == 2
    assert any("84-121123.trans.txt:3" in p and "84-121123-0002.flac" in p for p in result.problems)
    assert any("84-121123-0005.flac" in p and "no transcript line" in p for p in result.problems)


def test_prepare_command_fails_when_it_left_anything_out(tmp_path, capsys):
    rec = tmp_path / "recordings"
    for name in ["0_george_0.wav", "3_theo_1.wav", "9_yweweler_49.wav"]:
        tone(rec / name, 0.4, 8000)
    assert main(["prepare", "fsdd", str(tmp_path), str(tmp_path / "out")]) == 0
    tone(rec / "notes.wav", 0.4, 8000)
    capsys.readouterr()
    assert main(["prepare", "fsdd", str(tmp_path), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "notes.wav" in err[0] and err[1] == "asr: error: 1 left out of the manifests (warnings above)"
    assert len(read_manifest(tmp_path / "out" / "train.jsonl")) == 1  # the good files are still written


def test_not_a_corpus(tmp_path):
    with pytest.raises(PrepareError, match="no metadata.csv"):
        prepare("ljspeech", tmp_path, tmp_path / "out")
    with pytest.raises(PrepareError, match="not a folder"):
        prepare("fsdd", tmp_path / "nope", tmp_path / "out")
    with pytest.raises(PrepareError, match="no LibriSpeech subset"):
        prepare("librispeech", tmp_path, tmp_path / "out")


# The real corpora in ../shared/data (skipped where absent).

def test_real_ljspeech_splits(tmp_path):
    m = manifests(prepare("ljspeech", needs_shared("ljspeech", "LJSpeech-1.1"), tmp_path))
    assert [len(m[k]) for k in ("train", "dev", "test")] == [315, 30, 40]
    names = {k: {u.audio_filepath.rsplit("/", 1)[1][:10] for u in v} for k, v in m.items()}
    assert names["dev"] == {f"LJ002-{i:04d}" for i in range(131, 161)}
    assert names["test"] == {f"LJ002-{i:04d}" for i in range(161, 201)}
    assert not names["train"] & (names["dev"] | names["test"])
    assert 33 * 60 < sum(u.duration for u in m["train"]) < 35 * 60


def test_real_fsdd_splits(tmp_path):
    m = manifests(prepare("fsdd", needs_shared("fsdd"), tmp_path))
    assert [len(m[k]) for k in ("train", "dev", "test")] == [2000, 500, 500]
    assert all("_yweweler_" in u.audio_filepath for u in m["test"])


def test_real_librispeech_tree(tmp_path):
    m = manifests(prepare("librispeech", needs_shared("librispeech", "LibriSpeech"), tmp_path))
    assert {k: len(v) for k, v in m.items()} == {"dev-clean-2": 10, "test-clean": 4}
    first = m["test-clean"][0]
    assert first.text.startswith("HE HOPED THERE WOULD BE STEW FOR DINNER")
    assert first.duration == pytest.approx(10.435)


def an4_tree(root, form="sph", train=("an251-fash-b", "an253-fash-b", "cen1-fash-b"), test=("an406-fcaw-b",)):
    """An AN4 tree in one of its published forms: `sph` (NIST SPHERE) or `raw` (headerless,
    big-endian 16-bit 16 kHz), with the transcript line forms of each part."""
    etc = root / "an4" / "etc"
    etc.mkdir(parents=True)
    texts = {"an251-fash-b": "YES", "an253-fash-b": "GO", "cen1-fash-b": "R O B E R T", "an406-fcaw-b": "RUBOUT G M E F"}
    for part, folder, utts in [("train", "an4_clstk", train), ("test", "an4test_clstk", test)]:
        fileids = [f"{folder}/{u.split('-')[1]}/{u}" for u in utts]
        (etc / f"an4_{part}.fileids").write_text("".join(f + "\n" for f in fileids))
        lines = [f"<s> {texts[u]} </s> ({u})" if part == "train" else f"{texts[u]} ({u})" for u in utts]
        (etc / f"an4_{part}.transcription").write_text("".join(line + "\n" for line in lines))
        for fileid in fileids:
            path = root / "an4" / "wav" / f"{fileid}.{form}"
            path.parent.mkdir(parents=True, exist_ok=True)
            samples = (3000 * np.sin(np.arange(8000) * 0.05)).astype(np.int16)
            if form == "sph":
                sf.write(path, samples, 16000, format="NIST", subtype="PCM_16")
            else:
                path.write_bytes(samples.astype(">i2").tobytes())
    return root / "an4"


@pytest.mark.parametrize("form", ["sph", "raw"])
def test_an4_both_published_forms_and_espnets_split(tmp_path, form, monkeypatch):
    from asr.prepare import an4

    monkeypatch.setattr(an4, "DEV_UTTERANCES", 1)  # the first train fileid (ESPnet: the first 100)
    src = an4_tree(tmp_path / "src", form)
    result = prepare("an4", src.parent, tmp_path / "out")  # the folder the archive unpacks into will do
    m = manifests(result)
    assert result.problems == []
    assert [u.text for u in m["dev"]] == ["YES"]
    assert [u.text for u in m["train"]] == ["GO", "R O B E R T"]
    assert [u.text for u in m["test"]] == ["RUBOUT G M E F"]
    assert all(u.duration == 0.5 for s in m.values() for u in s)
    wave = audio.load(m["test"][0].audio_filepath)  # what training reads, sample for sample
    np.testing.assert_array_equal(np.round(wave * 32768).astype(np.int16),
                                  (3000 * np.sin(np.arange(8000) * 0.05)).astype(np.int16))
    suffix = ".sph" if form == "sph" else ".flac"  # .raw has no header to read: converted once
    assert all(u.audio_filepath.endswith(suffix) for s in m.values() for u in s)
    assert (tmp_path / "out" / "lm_text.txt").read_text() == "GO\nR O B E R T\n"  # train only


def test_an4_reports_what_it_leaves_out_and_the_command_exits_1(tmp_path, capsys):
    from asr.cli import main

    src = an4_tree(tmp_path / "src", "raw")
    etc = src / "etc"
    with open(etc / "an4_train.transcription", "a") as f:
        f.write("<s> NO </s> (an999-fash-b)\nthis line has no id\n")  # no fileid; no id at all
    with open(etc / "an4_train.fileids", "a") as f:
        f.write("an4_clstk/fash/an998-fash-b\nan4_clstk/fash/an997-fash-b\n")  # no transcript; no audio
    with open(etc / "an4_train.transcription", "a") as f:
        f.write("<s> STOP </s> (an997-fash-b)\n")
    (src / "wav" / "an4test_clstk" / "fcaw" / "an406-fcaw-b.raw").write_bytes(b"\x00\x01\x02")  # odd length
    assert main(["prepare", "an4", str(src), str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    warnings = [line for line in captured.err.splitlines() if line.startswith("asr: warning: ")]
    assert len(warnings) == 5, captured.err
    for words in ["an4_train.transcription:5: not 'TEXT (utterance-id)'", "an998-fash-b: no line in an4_train.transcription",
                  "an997-fash-b.sph: no such file (nor .raw)", "an4_train.transcription: an999-fash-b: not listed",
                  "an406-fcaw-b.raw: an odd number of bytes"]:
        assert sum(words in w for w in warnings) == 1, (words, warnings)
    assert "dev.jsonl\t3 utterances" in captured.out and "test.jsonl\t0 utterances" in captured.out  # all within the first 100
    with pytest.raises(PrepareError, match="not an AN4 folder"):
        prepare("an4", tmp_path / "out", tmp_path / "x")


def test_real_an4_tree(tmp_path):
    m = manifests(prepare("an4", needs_shared("an4"), tmp_path))
    assert [len(m[k]) for k in ("train", "dev", "test")] == [848, 100, 130]
    assert m["test"][0].text == "RUBOUT G M E F THREE NINE"
    assert m["test"][0].audio_filepath.endswith("an4test_clstk/fcaw/an406-fcaw-b.sph")
    assert m["dev"][0].audio_filepath.endswith("an4_clstk/fash/an251-fash-b.sph")  # the first train fileid
    assert sum(len(u.text.split()) for u in m["test"]) == 773
    assert not {u.audio_filepath for u in m["train"]} & {u.audio_filepath for u in m["dev"]}


# -- any folder of audio with NAME.txt beside each -------------------------------------------------

def folder_tree(root, files):
    """files: {relative name without extension: transcript}; audio is a short tone of each."""
    for name, text in files.items():
        tone(root / f"{name}.wav", 0.3)
        (root / f"{name}.txt").write_text(text, encoding="utf-8")


def test_folder_takes_of_one_prompt_stay_on_one_side(tmp_path):
    src = tmp_path / "src"
    folder_tree(src, {"p1_take1": "Hello there.", "p1_take2": "hello, THERE!", "p2_take1": "Other words",
                      "sub/p3_take1": "A third prompt", "sub/p3_take2": "A third prompt"})
    # p1_take1 is named for test: its other take follows it, and that is said.
    result = prepare("folder", src, tmp_path / "out", split=FolderSplit(test=["p1_take1"], dev=["sub/*"]))
    m = manifests(result)
    assert sorted(u.audio_filepath.rsplit("/", 1)[1] for u in m["test"]) == ["p1_take1.wav", "p1_take2.wav"]
    assert {u.text for u in m["test"]} == {"HELLO THERE"}
    assert [u.text for u in m["dev"]] == ["A THIRD PROMPT"] * 2
    assert [u.text for u in m["train"]] == ["OTHER WORDS"]
    assert result.problems == []
    assert any("1 files went to dev or test with another take" in line for line in result.extras)
    assert (tmp_path / "out" / "lm_text.txt").read_text() == "OTHER WORDS\n"


def test_folder_group_by_name_and_stable_hash_fractions(tmp_path):
    src = tmp_path / "src"
    files = {f"arctic_a{i:04d}_{t}": f"prompt number {i} take {t}" for i in range(100) for t in (1, 2)}
    folder_tree(src, files)
    split = FolderSplit(test_fraction=0.2, dev_fraction=0.2, group=r"arctic_a[0-9]{4}")
    first = manifests(prepare("folder", src, tmp_path / "a", split=split))
    again = manifests(prepare("folder", src, tmp_path / "b", split=split))
    assert first == again  # a hash, not a random draw
    assert [s.name for s in prepare("folder", src, tmp_path / "a").splits] == ["train"]  # all in train now:
    assert not (tmp_path / "a" / "dev.jsonl").exists()  # the earlier run's dev manifest is gone
    prompts = {k: {u.audio_filepath.rsplit("/", 1)[1][:12] for u in v} for k, v in first.items()}
    assert not prompts["train"] & prompts["test"] and not prompts["train"] & prompts["dev"]
    assert not prompts["dev"] & prompts["test"]
    assert all(len(v) == 2 * len(prompts[k]) for k, v in first.items())  # both takes, same side
    assert 10 <= len(prompts["test"]) <= 32 and 10 <= len(prompts["dev"]) <= 32  # 20 expected of 100
    with pytest.raises(PrepareError, match="add up to less than 1"):
        FolderSplit(test_fraction=0.6, dev_fraction=0.5)
    with pytest.raises(PrepareError, match="not a regular expression"):
        FolderSplit(group="arctic_(")


def test_folder_reports_what_it_changed_and_what_it_left_out(tmp_path, capsys):
    src = tmp_path / "src"
    folder_tree(src, {"price": "It costs $3.50, press #.", "year": "In 1820 we met 21 people",
                      "beep": "<beep ascending>", "blank": " ... "})
    tone(src / "no_text.flac", 0.3)
    (src / "README.txt").write_text("words without audio: a note")
    (src / "phone.m4a").write_bytes(b"\0\0\0\x20ftypM4A ")
    (src / "phone.txt").write_text("a recording we cannot read")
    tone(src / "twice.flac", 0.3)
    folder_tree(src, {"twice": "same name twice"})
    (src / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    tone(src / "latin1.wav", 0.3)
    (src / "broken.wav").write_bytes(b"RIFF not really")
    (src / "broken.txt").write_text("broken audio")
    out = tmp_path / "out"
    assert main(["prepare", "folder", str(src), str(out), "--test", "year"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    for name, why in [("no_text.flac", "no transcript no_text.txt"), ("phone.m4a", "not a format we read"),
                      ("twice.flac", "2 audio files share this name"), ("latin1.txt", "cannot read"),
                      ("blank.txt", "no words in the transcript"), ("broken.wav", "")]:
        assert any(name in line and why in line for line in err.splitlines()), (name, err)
    assert "6 left out" in err and "Traceback" not in err
    m = {k: read_manifest(out / f"{k}.jsonl") for k in ("train", "test")}
    assert [u.text for u in m["train"]] == ["IT COSTS THREE DOLLARS AND FIFTY CENTS PRESS"]
    assert [u.text for u in m["test"]] == ["IN EIGHTEEN TWENTY WE MET TWENTY ONE PEOPLE"]
    rows = [line.split("\t") for line in (out / "text_changes.tsv").read_text().splitlines()[1:]]
    assert [(r[0].rsplit("/", 1)[1], r[3], r[4]) for r in rows] == [
        ("price.txt", "$3.50 -> THREE DOLLARS AND FIFTY CENTS", "#"),
        ("year.txt", "1820 -> EIGHTEEN TWENTY; 21 -> TWENTY ONE", "")]
    assert "1 files left out as non-speech, their transcripts only <tags>: beep.txt" in captured.out
    assert "1 .txt files with no audio of their name, taken for notes, not transcripts: README.txt" in captured.out
    assert "README" not in err


def test_folder_leaves_out_a_name_that_is_not_utf8_and_reads_out_inside_src_again(tmp_path, capsys):
    import os

    src = tmp_path / "src"
    folder_tree(src, {"ok": "fine words"})
    bad = os.fsdecode(bytes(src) + b"/caf\xe9")  # a Latin-1 name, as old archives have them
    tone(tmp_path / "x.wav", 0.3)
    os.rename(tmp_path / "x.wav", bad + ".wav")  # (soundfile cannot write to such a name)
    Path(bad + ".txt").write_text("coffee")
    assert main(["prepare", "folder", str(src), str(src / "manifests")]) == 1
    err = capsys.readouterr().err
    assert "/caf\\xe9.wav: the file's name is not UTF-8 (rename it), left out" in err and "Traceback" not in err
    assert [u.text for u in read_manifest(src / "manifests" / "train.jsonl")] == ["FINE WORDS"]
    # Again: OUT's own lm_text.txt is not taken for a transcript without audio.
    Path(bad + ".wav").unlink()
    Path(bad + ".txt").unlink()
    assert main(["prepare", "folder", str(src), str(src / "manifests")]) == 0
    assert "warning" not in capsys.readouterr().err


def test_folder_split_options_belong_to_folder(tmp_path, capsys):
    assert main(["prepare", "fsdd", str(tmp_path), str(tmp_path / "out"), "--test", "x"]) == 2
    assert "fixed split" in capsys.readouterr().err
    assert main(["prepare", "folder", str(tmp_path), str(tmp_path / "out")]) == 1
    assert "no audio files" in capsys.readouterr().err


def test_real_cathy_split_by_prompt(tmp_path):
    src = needs_shared("cathy")
    split = FolderSplit(test=["arctic_b04[4-9]?", "arctic_b05[0-3]?"], dev=["arctic_b03[4-9]?", "arctic_b04[0-3]?"],
                        group=r"arctic_[ab][0-9]{4}")
    m = manifests(prepare("folder", src, tmp_path, split=split))
    assert [len(m[k]) for k in ("train", "dev", "test")] == [1353, 136, 131]
    prompts = {k: {u.audio_filepath.rsplit("/", 1)[1][:12] for u in v} for k, v in m.items()}
    assert prompts["test"] == {f"arctic_b{i:04d}" for i in range(440, 540)}
    assert not prompts["train"] & (prompts["dev"] | prompts["test"])


def test_real_asterisk_prompts(tmp_path):
    result = prepare("folder", needs_shared("asterisk"), tmp_path)
    m = manifests(result)
    assert len(m["train"]) == 561 and result.problems == []
    assert "2 files left out as non-speech" in result.extras[-1]
    texts = {u.audio_filepath.rsplit("/", 1)[1]: u.text for u in m["train"]}
    assert texts["one-moment-please.flac"] == "ONE MOMENT PLEASE"
    assert not any(c.isdigit() for t in texts.values() for c in t)


# -- Kaldi / ESPnet data directories ----------------------------------------------------------------

def kaldi_dir(root, with_pipe=False):
    """Two recordings cut by `segments` (one segment to the end, -1), speakers in utt2spk."""
    tone(root / "wavs" / "rec1.wav", 3.0)
    tone(root / "wavs" / "rec2.flac", 2.0)
    data = root / "data" / "train"
    data.mkdir(parents=True)
    scp = [f"rec1 {root / 'wavs' / 'rec1.wav'}", f"rec2 {root / 'wavs' / 'rec2.flac'}"]
    if with_pipe:
        scp.append(f"rec3 cat {root / 'wavs' / 'rec1.wav'} |")
    (data / "wav.scp").write_text("\n".join(scp) + "\n")
    (data / "segments").write_text("spkA-rec1-000 rec1 0.00 1.25\nspkA-rec1-001 rec1 1.50 2.90\n"
                                   "spkB-rec2-000 rec2 0.30 -1\n" + ("spkB-rec3-000 rec3 0.5 1.5\n" if with_pipe else ""))
    (data / "text").write_text("spkA-rec1-000 hello [noise] world\nspkA-rec1-001 Room 12, please. <UNK>\nspkB-rec2-000 GOOD BYE\n"
                               + ("spkB-rec3-000 piped words\n" if with_pipe else ""))
    (data / "utt2spk").write_text("spkA-rec1-000 spkA\nspkA-rec1-001 spkA\nspkB-rec2-000 spkB\n"
                                  + ("spkB-rec3-000 spkB\n" if with_pipe else ""))
    return data


def test_kaldi_dir_with_segments_round_trips(tmp_path, capsys):
    data = kaldi_dir(tmp_path)
    result = prepare("kaldi", data, tmp_path / "out")
    assert result.problems == [] and [s.name for s in result.splits] == ["train"]
    utts = read_manifest(tmp_path / "out" / "train.jsonl")
    assert [(u.utt_id, u.speaker, u.offset, u.duration, u.text) for u in utts] == [
        ("spkA-rec1-000", "spkA", 0.0, 1.25, "HELLO WORLD"),
        ("spkA-rec1-001", "spkA", 1.5, 1.4, "ROOM TWELVE PLEASE"),
        ("spkB-rec2-000", "spkB", 0.3, 1.7, "GOOD BYE")]  # -1: to the end of the 2 s recording
    # A segment's audio is that stretch of its recording, nothing more.
    from asr.data import load_audio
    whole = audio.load(utts[1].audio_filepath)
    assert np.array_equal(load_audio(utts[1]), whole[24000:24000 + 22400])
    # ... and back out: the same utterances, times and texts.
    assert main(["to-kaldi", str(tmp_path / "out" / "train.jsonl"), str(tmp_path / "back")]) == 0
    back = tmp_path / "back"
    assert (back / "text").read_text() == ("spkA-rec1-000 HELLO WORLD\nspkA-rec1-001 ROOM TWELVE PLEASE\n"
                                           "spkB-rec2-000 GOOD BYE\n")
    assert (back / "segments").read_text() == ("spkA-rec1-000 rec1 0.0000 1.2500\nspkA-rec1-001 rec1 1.5000 2.9000\n"
                                               "spkB-rec2-000 rec2 0.3000 2.0000\n")
    assert (back / "utt2spk").read_text() == (data / "utt2spk").read_text()
    assert (back / "spk2utt").read_text() == "spkA spkA-rec1-000 spkA-rec1-001\nspkB spkB-rec2-000\n"
    assert (back / "wav.scp").read_text() == (data / "wav.scp").read_text()
    again = prepare("kaldi", back, tmp_path / "again")
    assert read_manifest(again.splits[0].manifest) == utts


def test_kaldi_pipes_run_only_when_asked(tmp_path, capsys):
    data = kaldi_dir(tmp_path, with_pipe=True)
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "wav.scp:3: rec3: a command, not a file (cat " in err and "pass --run-pipes" in err
    assert "Traceback" not in err and len(read_manifest(tmp_path / "out" / "train.jsonl")) == 3
    assert not (tmp_path / "out" / "audio").exists()  # nothing was run
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out"), "--run-pipes"]) == 0
    utts = read_manifest(tmp_path / "out" / "train.jsonl")
    piped = next(u for u in utts if u.utt_id == "spkB-rec3-000")
    assert piped.audio_filepath.endswith("audio/rec3.flac") and (piped.offset, piped.duration) == (0.5, 1.0)


def test_kaldi_reports_what_it_leaves_out(tmp_path, capsys):
    data = kaldi_dir(tmp_path)
    with open(data / "wav.scp", "a") as f:
        f.write(f"rec4 {tmp_path / 'missing.wav'}\nrec5 raw.ark:1234\nrec6 false |\n")
    with open(data / "segments", "a") as f:
        f.write("u4 rec4 0 1\nu7 rec7 0 1\nu8 rec1 2.5 9.0\nbadline rec1\n")
    with open(data / "text", "a") as f:
        f.write("u4 words\nu7 words\nu8 words\nu9 no audio at all\n")
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out"), "--run-pipes"]) == 1
    err = capsys.readouterr().err
    for needle in ["rec4: " + str(tmp_path / "missing.wav") + ": no such file", "rec5: an archive offset",
                   "rec6: the command failed (exit 1", "u7: recording rec7 is not in wav.scp",
                   "u8: segment 2.5-9 s is not inside rec1", "expected 'UTTID RECID START END'", "u9: no audio for it"]:
        assert needle in err, (needle, err)
    assert "u4" not in err  # its recording was reported once, in wav.scp
    assert len(read_manifest(tmp_path / "out" / "train.jsonl")) == 3
    with pytest.raises(PrepareError, match="not a Kaldi data directory"):
        prepare("kaldi", tmp_path, tmp_path / "x")


def plain_kaldi_dir(path, wav_scp: str, text: str):
    """A data directory of wav.scp and text only."""
    path.mkdir()
    (path / "wav.scp").write_text(wav_scp)
    (path / "text").write_text(text)
    return path


def test_kaldi_dir_without_segments_one_utterance_per_recording(tmp_path, capsys):
    tone(tmp_path / "a.wav", 1.0)
    data = plain_kaldi_dir(tmp_path / "dev", f"a {tmp_path / 'a.wav'}\nb {tmp_path / 'b.wav'}\n",
                           "a first words\nb second words\n")
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert len(err) == 1 and "wav.scp:2: b: " in err[0] and "no such file" in err[0]  # once, not again for text
    [u] = read_manifest(tmp_path / "out" / "dev.jsonl")
    assert (u.utt_id, u.offset, u.duration, u.text) == ("a", None, 1.0, "FIRST WORDS")


def test_kaldi_tables_may_separate_the_id_with_tabs_and_ids_out_never_hold_spaces(tmp_path, capsys):
    tone(tmp_path / "a b.wav", 1.0)
    data = plain_kaldi_dir(tmp_path / "tabs", f"a\t{tmp_path / 'a b.wav'}\n", "a\tfirst  words\n")
    assert main(["prepare", "kaldi", str(data), str(tmp_path / "out")]) == 0
    [u] = read_manifest(tmp_path / "out" / "tabs.jsonl")
    assert (u.utt_id, u.text, u.audio_filepath) == ("a", "FIRST WORDS", str(tmp_path / "a b.wav"))
    # Out: ids with spaces would be split by Kaldi's readers; they are joined with '_'.
    write_manifest(tmp_path / "m.jsonl", [u._replace(utt_id="spk 1 utt 1", speaker="spk 1")])
    assert main(["to-kaldi", str(tmp_path / "m.jsonl"), str(tmp_path / "back")]) == 0
    assert (tmp_path / "back" / "text").read_text() == "spk_1_utt_1 FIRST WORDS\n"
    assert (tmp_path / "back" / "spk2utt").read_text() == "spk_1 spk_1_utt_1\n"
    assert (tmp_path / "back" / "wav.scp").read_text() == f"a_b {tmp_path / 'a b.wav'}\n"
    # An id the speaker does not lead gets it as a prefix, so utt2spk sorts the same by either field.
    write_manifest(tmp_path / "m.jsonl", [u._replace(utt_id="b", speaker="zed"), u._replace(utt_id="a", speaker="amy")])
    assert main(["to-kaldi", str(tmp_path / "m.jsonl"), str(tmp_path / "ids")]) == 0
    assert (tmp_path / "ids" / "utt2spk").read_text() == "amy-a amy\nzed-b zed\n"


def _speechocean_tree(root: Path, speakers: dict[str, list[str]]) -> None:
    """A speechocean762-shaped tree: published train/ and test/ sets, paths relative to root."""
    for part, ids in speakers.items():
        (root / part).mkdir(parents=True)
        scp, text, utt2spk = [], [], []
        for k, spk in enumerate(ids):
            utt = f"{spk}{k:05d}"
            wav = root / "WAVE" / f"SPEAKER{spk}" / f"{utt}.wav"
            wav.parent.mkdir(parents=True, exist_ok=True)
            sf.write(wav, np.zeros(1600, np.float32) + 0.01, 16000)
            scp.append(f"{utt} WAVE/SPEAKER{spk}/{utt}.wav")
            text.append(f"{utt}\tWE CALL IT {'BEAR' if part == 'train' else 'HOME'}")
            utt2spk.append(f"{utt}\t{spk}")
        for name, lines in (("wav.scp", scp), ("text", text), ("utt2spk", utt2spk)):
            (root / part / name).write_text("\n".join(lines) + "\n")


def test_speechocean762_splits_by_the_speaker_lists_and_keeps_held_out_sentences_from_the_lm(tmp_path, monkeypatch):
    src = tmp_path / "so"
    _speechocean_tree(src, {"train": ["0001", "0005"], "test": ["0003", "0024", "0044"]})
    (src / "splits").mkdir()
    for name, ids in (("train", "0001 0005 0044"), ("dev", "0024"), ("test", "0003")):
        (src / "splits" / f"{name}.speakers").write_text(ids.replace(" ", "\n") + "\n")
    monkeypatch.chdir(tmp_path / "so" / "WAVE")  # wav.scp's paths are the corpus folder's, wherever we run
    result = prepare("speechocean762", src, tmp_path / "out")
    assert not result.problems
    splits = {s.name: read_manifest(s.manifest) for s in result.splits}
    assert {n: sorted(u.speaker for u in us) for n, us in splits.items()} == {
        "train": ["0001", "0005", "0044"], "dev": ["0024"], "test": ["0003"]}
    assert all(Path(u.audio_filepath).is_file() for us in splits.values() for u in us)
    assert (tmp_path / "out" / "lm_text.txt").read_text() == "WE CALL IT BEAR\nWE CALL IT BEAR\n"  # HOME: held out


def test_speechocean762_real_tree_has_the_fixed_split():
    src = needs_shared("speechocean762")
    import tempfile
    with tempfile.TemporaryDirectory() as out:
        result = prepare("speechocean762", src, out)
        assert {s.name: s.utterances for s in result.splits} == {"train": 3500, "dev": 500, "test": 1000}
        assert not result.problems
