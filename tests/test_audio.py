import os

import librosa
import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asr import audio
from asr.audio import AudioError


def sine(seconds, rate, channels=1, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x * (c + 1) / channels for c in range(channels)], axis=1) if channels > 1 else x


@pytest.mark.parametrize("ext,subtype", [(".wav", "PCM_16"), (".wav", "PCM_24"), (".wav", "FLOAT"),
                                         (".wav", "DOUBLE"), (".wav", "PCM_U8"), (".flac", "PCM_16"),
                                         (".ogg", "VORBIS"), (".mp3", "MPEG_LAYER_III")])
def test_formats_load_as_16k_mono_float32(tmp_path, ext, subtype):
    path = tmp_path / f"x{ext}"
    sf.write(path, sine(1.0, 22050), 22050, subtype=subtype)
    wave = audio.load(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(len(wave) - 16000) <= 1600  # mp3 encoders pad a little at the ends
    # a 440 Hz sine stays a 440 Hz sine
    spectrum = np.abs(np.fft.rfft(wave[2000:14000]))
    assert abs(np.argmax(spectrum) * 16000 / 12000 - 440) < 5


def test_six_channels_at_192k_is_downmixed_and_resampled(tmp_path):
    path = tmp_path / "surround.wav"
    x = sine(0.5, 192000, channels=6)
    sf.write(path, x, 192000, subtype="PCM_24")
    wave = audio.load(path)
    assert len(wave) == 8000
    expected = librosa.resample(x.mean(axis=1), orig_sr=192000, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_allclose(wave, expected, atol=1e-4)


def test_resampling_matches_librosa(tmp_path):
    path = tmp_path / "x.flac"
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 22050).astype(np.float32)
    sf.write(path, x, 22050, subtype="PCM_24")
    ref = librosa.resample(sf.read(path, dtype="float32")[0], orig_sr=22050, target_sr=16000, res_type="soxr_hq")
    np.testing.assert_allclose(audio.load(path), ref, atol=1e-6)


def test_duration_reads_the_header(tmp_path):
    path = tmp_path / "x.flac"
    sf.write(path, sine(2.5, 8000), 8000)
    assert audio.duration(path) == pytest.approx(2.5)


def bad_files(tmp_path):
    (tmp_path / "dir.wav").mkdir()
    (tmp_path / "text.wav").write_text("this is not audio\n")
    (tmp_path / "empty.wav").write_bytes(b"")
    sf.write(tmp_path / "header_only.wav", np.zeros(0, dtype=np.float32), 16000)
    sf.write(tmp_path / "full.flac", sine(2.0, 16000), 16000)
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "truncated.flac").write_bytes(data[: len(data) // 2])
    nan = sine(0.5, 16000)
    nan[100] = np.nan
    sf.write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    sf.write(tmp_path / "one_sample_48k.wav", np.zeros(1, dtype=np.float32), 48000)  # nothing left at 16 kHz
    return {
        "one_sample_48k.wav": "too short",
        "missing.wav": "no such file",
        "dir.wav": "is a directory",
        "text.wav": "not a readable audio file",
        "empty.wav": "empty file",
        "header_only.wav": "zero length",
        "truncated.flac": "not a readable audio file",
        "nan.wav": "NaN",
    }


def test_bad_files_raise_one_line_errors_naming_the_file(tmp_path):
    for name, problem in bad_files(tmp_path).items():
        path = tmp_path / name
        with pytest.raises(AudioError) as err:
            audio.load(path)
        message = str(err.value)
        assert message.startswith(f"{path}: "), message
        assert problem in message, message
        assert "\n" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path):
    path = tmp_path / "locked.wav"
    sf.write(path, sine(0.1, 16000), 16000)
    path.chmod(0)
    with pytest.raises(AudioError, match="permission denied"):
        audio.load(path)


def test_integer_pcm_in_memory_is_centred_and_scaled_to_full_range():
    wave = sine(0.05, 16000) * 0.5
    for pcm in [np.round(wave * 32768).astype(np.int16), np.round(wave * 32768 + 32768).astype(np.uint16),
                np.round(wave * 128 + 128).astype(np.uint8), np.round(wave * 2**31).astype(np.int32)]:
        got = audio.from_array(pcm, 16000)
        assert np.abs(got - wave).max() < 1 / 64, pcm.dtype  # 8-bit: within a quantisation step
    assert np.all(audio.from_array(np.full(10, 128, np.uint8), 16000) == 0)  # unsigned silence is mid-range
    with pytest.raises(AudioError, match="too short"):
        audio.from_array(np.zeros(1, np.int16), 48000)


def test_change_speed_moves_tempo_and_pitch_together():
    wave = sine(1.0, 16000)
    fast = audio.change_speed(wave, 1.25)
    assert abs(len(fast) - 12800) <= 1 and fast.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(fast[1000:11000]))
    assert abs(np.argmax(spectrum) * 16000 / 10000 - 550) < 5  # 440 Hz x 1.25
    assert audio.change_speed(wave, 1.0) is wave


def test_symlink_loop_and_non_utf8_name(tmp_path):
    (tmp_path / "a.wav").symlink_to(tmp_path / "b.wav")
    (tmp_path / "b.wav").symlink_to(tmp_path / "a.wav")
    with pytest.raises(AudioError, match="cannot open"):
        audio.load(tmp_path / "a.wav")
    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.wav")  # Latin-1 bytes: not UTF-8
    sf.write(tmp_path / "ok.wav", sine(0.5, 16000), 16000)
    os.rename(tmp_path / "ok.wav", odd)
    assert len(audio.load(os.fsdecode(odd))) == 8000


@pytest.mark.parametrize("rate, channels", [(16000, 1), (44100, 2), (8000, 6)])
def test_streamed_blocks_join_to_what_load_reads(tmp_path, rate, channels):
    rng = np.random.default_rng(0)
    wave = (0.1 * rng.standard_normal((int(7.3 * rate), channels))).astype(np.float32)
    sf.write(tmp_path / "x.flac", wave, rate, subtype="PCM_24")
    blocks = list(audio.stream(tmp_path / "x.flac", block_seconds=1.1))
    assert len(blocks) >= 6 and all(b.dtype == np.float32 and b.ndim == 1 for b in blocks)
    whole = audio.load(tmp_path / "x.flac")
    joined = np.concatenate(blocks)
    assert len(joined) == len(whole)
    np.testing.assert_allclose(joined, whole, atol=1e-6)  # a streaming resampler: no seams


def test_stream_names_the_file_when_it_breaks_midway(tmp_path):
    sf.write(tmp_path / "whole.flac", np.zeros(16000 * 20, np.float32) + 0.1, 16000)
    data = (tmp_path / "whole.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match=r"^" + str(tmp_path / "cut.flac") + ": "):
        list(audio.stream(tmp_path / "cut.flac", block_seconds=1.0))
    (tmp_path / "zero.wav").write_bytes(b"")
    with pytest.raises(AudioError, match="empty file"):
        list(audio.stream(tmp_path / "zero.wav"))


# A real header followed by anything: what a damaged or hostile file looks like to a decoder.
_HEADS = [b"", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"fLaC\x00\x00\x00\x22", b"OggS\x00\x02", b"ID3\x03\x00", b"\xff\xfb\x90\x00"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(_HEADS), body=st.binary(max_size=3000), ext=st.sampled_from(audio.AUDIO_EXTENSIONS))
def test_any_bytes_load_as_audio_or_raise_one_line_naming_the_file(tmp_path, head, body, ext):
    path = tmp_path / f"x{ext}"
    path.write_bytes(head + body)
    for read in (audio.load, lambda p: np.concatenate(list(audio.stream(p)))):
        try:
            wave = read(path)
        except AudioError as e:
            assert str(e).startswith(f"{path}: ") and "\n" not in str(e)
            continue
        assert wave.dtype == np.float32 and wave.ndim == 1 and len(wave) > 0 and np.isfinite(wave).all()
