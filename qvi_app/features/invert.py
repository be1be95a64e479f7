"""Audio back from a log-mel spectrogram (Griffin-Lim), to check a feature pipeline by ear."""

from __future__ import annotations

import numpy as np
import torch
import torchaudio.transforms as T

from qvi_app.features.logmel import LogMelSettings, unit_sum_mel_filters


def logmel_to_wave(logmel: torch.Tensor, settings: LogMelSettings = LogMelSettings(), n_iter: int = 48) -> np.ndarray:
    """(T, F) log-mel of :class:`LogMelFrontEnd` → waveform at ``settings.sample_rate``.

    Undoes the log; each mel band is the average power of the bins under its (unit-sum)
    triangle, so each bin gets the triangle-weighted mix of the bands covering it; then
    torchaudio's Griffin-Lim estimates the phase. Loudness is relative (the
    front end peak-normalised); the result is scaled to peak 0.9.
    """
    s = settings
    mel = (10.0 ** (logmel.double() * s.log_max) - 1.0) / s.log_gain            # (T, F) mel power
    fb = unit_sum_mel_filters(s).double()                                        # (n_freq, F)
    weights = fb / fb.sum(dim=1, keepdim=True).clamp_min(1e-12)                 # bins → bands, rows sum to 1
    power = (weights @ mel.T).clamp_min(0)                                       # (n_freq, T)
    gl = T.GriffinLim(n_fft=s.n_fft, hop_length=s.hop_length, power=1.0, n_iter=n_iter)
    with torch.no_grad():
        wave = gl(power.sqrt().float()).numpy()
    return (0.9 * wave / max(float(np.abs(wave).max()), 1e-9)).astype(np.float32)
