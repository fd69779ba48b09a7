import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.data import read_manifest
from asr.prepare import PrepareError, prepare
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
