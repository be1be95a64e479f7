"""Signal-level transforms of 1-D float32 waveforms: noise, pitch shift, time stretch, gain.

Used by the robustness tests and by training-time augmentation.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import torch
import torchaudio.functional as AF
import torchaudio.transforms as T

_N_FFT, _HOP = 1024, 256


def add_noise(wave: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add white noise at ``snr_db`` dB below the signal's mean power."""
    power = float(np.mean(np.square(wave))) + 1e-12
    noise = rng.standard_normal(len(wave)).astype(np.float32) * np.sqrt(power / 10 ** (snr_db / 10))
    return (wave + noise).astype(np.float32)


def apply_gain(wave: np.ndarray, gain_db: float) -> np.ndarray:
    return (wave * 10 ** (gain_db / 20)).astype(np.float32)


def pitch_shift(wave: np.ndarray, sr: int, semitones: float) -> np.ndarray:
    """Shift pitch by ``semitones`` keeping the duration: stretch by the pitch ratio, then resample.

    The resampling ratio is approximated by a fraction with a small denominator (error under
    0.1 cent), which keeps the sinc kernels short; torchaudio's own ``pitch_shift`` resamples
    between rates like 18545 and 22050 Hz and is two orders of magnitude slower.
    """
    ratio = Fraction(2.0 ** (semitones / 12.0)).limit_denominator(400)
    stretched = time_stretch(wave, 1.0 / float(ratio))            # longer by the ratio, same pitch
    with torch.inference_mode():
        out = AF.resample(torch.from_numpy(stretched), ratio.numerator, ratio.denominator)
    out = out.numpy().astype(np.float32)
    n = len(wave)
    return out[:n] if len(out) >= n else np.pad(out, (0, n - len(out)))


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Play ``rate`` times faster (rate 1.1 → 10% shorter) keeping the pitch (phase vocoder)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
    window = torch.hann_window(_N_FFT)
    with torch.inference_mode():
        spec = torch.stft(x, _N_FFT, _HOP, window=window, return_complex=True)
        stretched = T.TimeStretch(hop_length=_HOP, n_freq=_N_FFT // 2 + 1, fixed_rate=rate)(spec)
        out = torch.istft(stretched, _N_FFT, _HOP, window=window, length=int(round(len(wave) / rate)))
    return out.numpy().astype(np.float32)
