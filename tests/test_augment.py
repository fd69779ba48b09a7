import numpy as np
import pytest
import soundfile as sf
import torch

from asr.augment import VTLP, AugmentConfig, SpecAugment, WaveAugment, add_noise, narrowband
from asr.config import ConfigError, load_config
from asr.data import AudioDataset, BucketBatchSampler, Utterance
from asr.features import FeatureConfig, LogMel
from asr.text import Vocabulary


def test_spec_augment_masks_some_values_only():
    torch.manual_seed(0)
    feats = torch.randn(4, 300, 80)
    out = SpecAugment(AugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=20))(feats)
    assert out.shape == feats.shape
    masked = out == 0
    assert masked.any() and masked.float().mean() < 0.5
    assert torch.equal(out[~masked], feats[~masked])
    assert not AugmentConfig().spec_augment and not AugmentConfig().wave_augment


def _peak_hz(feats: torch.Tensor) -> float:
    """The frequency of the loudest mel bin, by the filterbank's centres (Slaney's scale)."""
    return float(VTLP(0.1, FeatureConfig()).centres_hz[feats.mean(1)[0].argmax()])


@pytest.mark.parametrize("hz", [700.0, 2000.0])
@pytest.mark.parametrize("alpha", [0.9, 1.1])
def test_vtlp_moves_a_tone_to_alpha_times_its_frequency(hz, alpha):
    features = LogMel(FeatureConfig())
    t = torch.arange(16000) / 16000
    feats = features.raw(torch.sin(2 * torch.pi * hz * t)[None])  # a steady tone: CMN would flatten it
    warped = VTLP(0.1, FeatureConfig())(feats, torch.tensor([alpha]))
    assert _peak_hz(feats) == pytest.approx(hz, rel=0.04)  # one mel bin: ~3% wide here
    assert _peak_hz(warped) == pytest.approx(alpha * hz, rel=0.04)
    assert warped.shape == feats.shape


def test_vtlp_of_one_is_the_identity_and_draws_follow_the_seed():
    feats = torch.randn(3, 50, 80)
    vtlp = VTLP(0.1, FeatureConfig())
    assert torch.allclose(vtlp(feats, torch.ones(3)), feats)
    torch.manual_seed(1)
    a = vtlp(feats)
    torch.manual_seed(1)
    assert torch.equal(a, vtlp(feats))
    assert not torch.allclose(a, feats)
    # Nothing is read from outside the band: the top and bottom bins stay in range for any factor
    bins = vtlp.source_bins(torch.tensor([0.9, 1.0, 1.1]))
    assert bins.min() >= 0 and bins.max() <= 79 and (bins.diff(dim=1) > 0).all()


def _one_second(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros(16000, dtype=np.float32), 16000)
    return [Utterance(str(tmp_path / "a.wav"), 1.0, "HI")]


def test_speed_perturbation_changes_length_not_targets(tmp_path):
    utts = _one_second(tmp_path)
    plain = AudioDataset(utts, Vocabulary(), cache=True)
    perturbed = AudioDataset(utts, Vocabulary(), cache=True, augment=WaveAugment(AugmentConfig(speed_perturb=[0.9, 1.1])))
    lengths = {len(perturbed[0, epoch][0]) for epoch in range(20)}
    assert lengths == {17778, 14545}
    assert len(plain[0][0]) == 16000 and plain[0][0] is plain[0][0]  # decoded once, then cached
    assert perturbed[0, 0][1].tolist() == plain[0][1].tolist()


def test_draws_depend_on_seed_epoch_and_index_only(tmp_path):
    """Any worker, rank or resumed run that loads an utterance gets the same augmentation."""
    rng = np.random.default_rng(0)
    noise_dir = tmp_path / "noise"
    noise_dir.mkdir()
    for name in ("hum.wav", "hiss.flac"):
        sf.write(noise_dir / name, rng.standard_normal(8000).astype(np.float32) * 0.1, 16000)
    config = AugmentConfig(speed_perturb=[0.9, 1.0, 1.1], noise_dir=str(noise_dir), noise_prob=0.5)
    wave = np.sin(np.arange(16000) / 10).astype(np.float32)
    a, b = WaveAugment(config, seed=1), WaveAugment(config, seed=1)
    draws = [a(wave, epoch, index) for epoch in range(4) for index in range(4)]
    again = [b(wave, epoch, index) for epoch in reversed(range(4)) for index in reversed(range(4))][::-1]
    assert all(np.array_equal(x, y) for x, y in zip(draws, again))
    assert len({x.tobytes() for x in draws}) > 8  # and they do vary
    other_seed = [WaveAugment(config, seed=2)(wave, epoch, index) for epoch in range(4) for index in range(4)]
    assert not all(np.array_equal(x, y) for x, y in zip(draws, other_seed))


def test_noise_is_added_at_the_drawn_snr():
    rng = np.random.default_rng(0)
    wave = np.sin(np.arange(16000) / 7).astype(np.float32)
    noise = rng.standard_normal(5000).astype(np.float32)  # shorter than the speech: looped
    for snr in (0.0, 10.0, 20.0):
        mixed = add_noise(wave, noise, snr, rng)
        added = mixed - wave
        assert len(mixed) == len(wave)
        measured = 10 * np.log10(np.mean(wave**2) / np.mean(added**2))
        assert measured == pytest.approx(snr, abs=0.01)
    assert add_noise(np.zeros(100, np.float32), noise, 10.0, rng).tolist() == [0.0] * 100


def test_bad_augment_configs_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="speed_perturb"):
        load_config(None, ["augment.speed_perturb=[3.0]"])
    with pytest.raises(ConfigError, match="noise_snr"):
        load_config(None, ["augment.noise_snr=[20, 5]"])
    with pytest.raises(ConfigError, match="vtlp"):
        load_config(None, ["augment.vtlp=0.7"])
    with pytest.raises(ValueError, match="no audio files"):
        WaveAugment(AugmentConfig(noise_dir=str(tmp_path)))
    with pytest.raises(ValueError, match="not a directory"):
        WaveAugment(AugmentConfig(noise_dir=str(tmp_path / "nope")))


def test_epoch_keys_from_the_sampler_reach_the_dataset(tmp_path):
    utts = _one_second(tmp_path) * 3
    dataset = AudioDataset(utts, Vocabulary(), augment=WaveAugment(AugmentConfig(speed_perturb=[0.9, 1.1])))
    sampler = BucketBatchSampler([1.0] * 3, 10.0, epoch_keys=True)
    sampler.set_epoch(5)
    keys = [k for batch in sampler for k in batch]
    assert sorted(keys) == [(0, 5), (1, 5), (2, 5)]
    assert all(len(dataset[k][0]) in (17778, 14545) for k in keys)


def test_narrowband_leaves_nothing_above_4khz_and_keeps_the_length():
    t = np.arange(16001) / 16000
    wave = (np.sin(2 * np.pi * 1000 * t) + np.sin(2 * np.pi * 6000 * t)).astype(np.float32)
    out = narrowband(wave)
    assert out.dtype == np.float32 and len(out) == len(wave)
    spectrum = np.abs(np.fft.rfft(out[1000:-1000]))
    freqs = np.fft.rfftfreq(len(out) - 2000, 1 / 16000)
    tone = lambda f: spectrum[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert tone(6000) < 1e-3 * tone(1000)  # the 6 kHz tone is gone
    assert tone(1000) == pytest.approx(np.abs(np.fft.rfft(wave[1000:-1000]))[np.argmin(np.abs(freqs - 1000))], rel=0.01)


def test_narrowband_takes_the_configured_fraction_and_leaves_other_draws_alone():
    wave = np.sin(np.arange(16000) * 2 * np.pi * 6000 / 16000).astype(np.float32)  # only above 4 kHz
    draws = [WaveAugment(AugmentConfig(narrowband=0.3))(wave, epoch, index) for epoch in range(10) for index in range(20)]
    silenced = sum(np.sqrt(np.mean(d**2)) < 0.01 for d in draws)  # the edges ring a little
    assert 40 <= silenced <= 80  # about 60 of 200
    speed = AugmentConfig(speed_perturb=[0.9, 1.0, 1.1])
    with_nb = AugmentConfig(speed_perturb=[0.9, 1.0, 1.1], narrowband=0.5)
    lengths = [len(WaveAugment(speed)(wave, 0, i)) for i in range(20)]
    assert lengths == [len(WaveAugment(with_nb)(wave, 0, i)) for i in range(20)]
    assert AugmentConfig(narrowband=0.3).wave_augment
    with pytest.raises(ValueError, match="narrowband"):
        AugmentConfig(narrowband=1.5)
