import librosa
import numpy as np
import torch

from asr.features import FeatureConfig, LogMel, compute_stats


def speechy(seconds=1.3, rate=16000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = sum(np.sin(2 * np.pi * f * t) / k for k, f in enumerate([180, 720, 1500, 3100, 6000], 1))
    return (0.2 * x + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_mel_power_matches_librosa():
    """Tolerance: each mel bin within 1e-4 relative of librosa's value, plus 1e-6 of the largest
    value (float32 FFTs differ in the last bits; a wrong filterbank or window is off by >1%)."""
    config = FeatureConfig()
    x = speechy()
    ours = LogMel(config).mel(torch.from_numpy(x)[None])[0].numpy()
    ref = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=512, win_length=400, hop_length=160, n_mels=80,
        window="hann", center=True, pad_mode="constant", power=2.0, htk=False, norm="slaney",
    )
    assert ours.shape == ref.shape == (80, len(x) // 160 + 1)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-6 * ref.max())


def test_log_mel_shapes_and_lengths_in_a_batch():
    logmel = LogMel(FeatureConfig())
    a, b = torch.from_numpy(speechy(1.0)), torch.from_numpy(speechy(0.5, seed=1))
    waves = torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True)
    feats, lengths = logmel(waves, torch.tensor([len(a), len(b)]))
    assert feats.shape == (2, 101, 80)
    assert lengths.tolist() == [101, 51]
    alone, _ = logmel(b[None], torch.tensor([len(b)]))
    # Frames that do not reach into the padding are the same as for the utterance alone.
    torch.testing.assert_close(feats[1, :49], alone[0, :49], atol=1e-4, rtol=1e-4)


def test_stats_normalise_to_zero_mean_unit_variance():
    config = FeatureConfig()
    waves = [speechy(1.0, seed=s) for s in range(3)]
    mean, std = compute_stats(waves, config)
    logmel = LogMel(config)
    logmel.set_stats(mean, std)
    feats = torch.cat([logmel(torch.from_numpy(w)[None], torch.tensor([len(w)]))[0][0] for w in waves])
    torch.testing.assert_close(feats.mean(0), torch.zeros(80), atol=1e-3, rtol=0)
    torch.testing.assert_close(feats.std(0), torch.ones(80), atol=1e-2, rtol=0)


def test_stats_travel_in_the_state_dict_and_apply():
    logmel = LogMel(FeatureConfig())
    logmel.set_stats(torch.full((80,), 2.0), torch.full((80,), 3.0))
    other = LogMel(FeatureConfig())
    other.load_state_dict(logmel.state_dict())
    wave = torch.from_numpy(speechy(0.3))[None]
    normalised, _ = other(wave, torch.tensor([wave.shape[1]]))
    torch.testing.assert_close(normalised, (logmel.local(wave, torch.tensor([wave.shape[1]]))[0] - 2.0) / 3.0)


def test_utterance_mean_removal_makes_features_gain_invariant():
    logmel = LogMel(FeatureConfig())
    wave = torch.from_numpy(speechy(0.8))
    loud, _ = logmel(wave[None], torch.tensor([len(wave)]))
    quiet, _ = logmel(0.05 * wave[None], torch.tensor([len(wave)]))  # 26 dB quieter
    torch.testing.assert_close(loud, quiet, atol=1e-3, rtol=0)
    plain = LogMel(FeatureConfig(cmn=False))
    assert (plain(wave[None], torch.tensor([len(wave)]))[0] - plain(0.05 * wave[None], torch.tensor([len(wave)]))[0]).abs().min() > 5


def test_utterance_mean_ignores_padding():
    logmel = LogMel(FeatureConfig())
    a, b = torch.from_numpy(speechy(1.0)), torch.from_numpy(speechy(0.5, seed=1))
    feats, lengths = logmel(torch.nn.utils.rnn.pad_sequence([a, b], batch_first=True), torch.tensor([len(a), len(b)]))
    alone, _ = logmel(b[None], torch.tensor([len(b)]))
    torch.testing.assert_close(feats[1, :49], alone[0, :49], atol=1e-4, rtol=1e-4)



def test_digital_silence_around_speech_does_not_move_its_mean():
    # Padding or gaps cut to zeros sit at the log floor, ~100 dB down: counted in the mean, a
    # second of them on each side would shift every speech frame by several units.
    logmel = LogMel(FeatureConfig())
    wave = torch.from_numpy(speechy(0.8))
    padded = torch.cat([torch.zeros(16000), wave, torch.zeros(16000)])
    alone, _ = logmel.local(wave[None], torch.tensor([len(wave)]))
    inside, _ = logmel.local(padded[None], torch.tensor([len(padded)]))
    inside = inside[0, 100:100 + alone.shape[1]]
    # The edge frames see different audio (zeros against the next samples), and the few where
    # speech meets the zeros count in one mean, not the other (measured: 0.16 apart on average,
    # 0.29 at most); a mean over every frame would move every bin by more than 12.
    torch.testing.assert_close(inside[3:-3], alone[0, 3:-3], atol=0.5, rtol=0)
    everything = logmel.raw(padded[None])[0].mean(0)
    assert (logmel.raw(wave[None])[0].mean(0) - everything).abs().min() > 5
    # quiet but real: a noise floor 40 dB under the speech still counts, as in any recording
    hiss = 0.002 * torch.randn(16000, generator=torch.Generator().manual_seed(0))
    noisy = torch.cat([hiss, wave])
    with_hiss, _ = logmel.local(noisy[None], torch.tensor([len(noisy)]))
    assert (with_hiss[0, 100 + 3:-3] - alone[0, 3:-3]).abs().mean() > 1
