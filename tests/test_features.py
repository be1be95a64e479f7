import numpy as np
import pytest
import torch

from qvi_app.audio.transform import pitch_shift
from qvi_app.encoders import load_encoder
from qvi_app.features import CQT, CQTSettings, LogMelFrontEnd, LogMelSettings
from tests.conftest import tone


@pytest.mark.parametrize("freq", [110.0, 440.0, 1000.0])
def test_cqt_peaks_at_the_tone_with_half_its_amplitude(freq):
    s = CQTSettings()
    cqt = CQT(s)
    mag = cqt(torch.from_numpy(tone(freq, 2.0, s.sample_rate, amp=0.8)))[0]
    mid = mag[:, mag.shape[1] // 2]                      # a frame far from the edges
    k = int(mid.argmax())
    assert abs(12 * np.log2(s.frequencies()[k].item() / freq)) <= 0.5   # within half a semitone
    assert mid[k].item() == pytest.approx(0.4, rel=0.1)                # A/2
    assert mid[k].item() > 5 * mid[(k + 12) % s.n_bins].item()        # an octave away is quiet


def test_cqt_settings_derive_bins_and_frame_rate():
    s = CQTSettings()
    assert s.n_bins == 63 and s.frequencies()[-1].item() <= s.f_max
    out = CQT(s)(torch.zeros(s.sample_rate))
    assert out.shape == (1, s.n_bins, s.sample_rate // s.hop_length + 1)


def test_logmel_shape_and_range():
    s = LogMelSettings()
    fe = LogMelFrontEnd(s)
    x = torch.from_numpy(np.stack([tone(440, 3.0, s.sample_rate), tone(2000, 3.0, s.sample_rate)]))
    out = fe(x)
    assert out.shape == (2, 1, 3 * s.sample_rate // s.hop_length + 1, s.n_mels)   # (B, C, T, F)
    assert 0.0 <= out.min().item() and out.max().item() < 1.0
    assert fe.filters.sum(dim=0).allclose(torch.ones(s.n_mels))                   # unit-sum filters
    peak_band = out[0, 0, 50].argmax().item()
    assert peak_band < out[1, 0, 50].argmax().item()                               # 440 Hz below 2 kHz
    assert fe(torch.from_numpy(tone(440, 0.2, s.sample_rate))).shape[2] == s.min_frames   # padded


def _chirp_burst(sr, f0, seconds=1.5):
    t = np.arange(int(seconds * sr)) / sr
    f = f0 * 2 ** (t / seconds)                       # one octave up over the clip
    env = np.minimum(1, 10 * t) * np.exp(-2 * t)
    w = env * np.sin(2 * np.pi * np.cumsum(f) / sr)
    w += 0.5 * env * np.sin(4 * np.pi * np.cumsum(f) / sr)
    return w.astype(np.float32)


def _noise_bursts(sr, seconds=1.5):
    rng = np.random.default_rng(3)
    w = rng.standard_normal(int(seconds * sr)).astype(np.float32)
    gate = (np.arange(len(w)) // (sr // 8)) % 2
    return (0.3 * w * gate).astype(np.float32)


def test_2dft_is_tolerant_to_pitch_shift_and_delay():
    """The seed's claim: a pitch-shifted or delayed copy stays closer than a different sound."""
    enc = load_encoder("2dft")
    sr = enc.sample_rate
    ref = _chirp_burst(sr, 220)
    e = enc.embed(ref, sr)
    shifted = enc.embed(pitch_shift(ref, sr, 3), sr)
    delayed = enc.embed(np.concatenate([np.zeros(int(0.3 * sr), np.float32), ref]), sr)
    other = enc.embed(_noise_bursts(sr), sr)
    other_tone = enc.embed(tone(300, 1.5, sr), sr)
    assert e @ shifted > 0.9 and e @ delayed > 0.9
    assert e @ shifted > e @ other + 0.2 and e @ delayed > e @ other_tone + 0.2


def test_2dft_magnitude_is_exactly_invariant_to_circular_shifts():
    from qvi_app.features.twodft import TwoDFTSettings

    spec = torch.rand(63, 256)
    a = torch.fft.fft2(spec).abs()
    b = torch.fft.fft2(torch.roll(spec, shifts=(3, 40), dims=(0, 1))).abs()
    assert torch.allclose(a, b, atol=1e-3)
    assert TwoDFTSettings().dim == 63 * 25


@pytest.mark.parametrize("freq", [150.0, 1000.0, 6000.0])
def test_the_display_spectrogram_names_hertz_where_a_tone_is_drawn(freq):
    """The window's plots label their vertical axis in Hz (band_at): a tone's brightest band
    is the one that place falls in, at any input rate."""
    from qvi_app.features.display import display_spectrogram

    for sr in (16000, 44100):
        t = np.arange(sr) / sr
        spec = display_spectrogram(np.sin(2 * np.pi * freq * t).astype(np.float32), sr)
        # band i is drawn from i to i + 1; 1 kHz falls between two centres, and both are as bright
        assert abs(spec.db.mean(axis=1).argmax() + 0.5 - spec.band_at(freq)) <= 0.51
    assert spec.band_at(spec.f_max) == pytest.approx(spec.db.shape[0] + 0.5)
