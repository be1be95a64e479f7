"""Signal-level transforms of 1-D float32 waveforms: noise, pitch shift, time stretch, gain.

Used by the robustness tests and by training-time augmentation.
"""

from __future__ import annotations

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
    """Shift pitch by ``semitones`` keeping the duration (phase vocoder + resampling)."""
    with torch.inference_mode():
        out = AF.pitch_shift(torch.from_numpy(np.ascontiguousarray(wave, np.float32)), sr, semitones,
                             n_fft=_N_FFT, hop_length=_HOP)
    return out.numpy().astype(np.float32)


def time_stretch(wave: np.ndarray, rate: float) -> np.ndarray:
    """Play ``rate`` times faster (rate 1.1 → 10% shorter) keeping the pitch (phase vocoder)."""
    x = torch.from_numpy(np.ascontiguousarray(wave, np.float32))
    window = torch.hann_window(_N_FFT)
    with torch.inference_mode():
        spec = torch.stft(x, _N_FFT, _HOP, window=window, return_complex=True)
        stretched = T.TimeStretch(hop_length=_HOP, n_freq=_N_FFT // 2 + 1, fixed_rate=rate)(spec)
        out = torch.istft(stretched, _N_FFT, _HOP, window=window, length=int(round(len(wave) / rate)))
    return out.numpy().astype(np.float32)
