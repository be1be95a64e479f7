"""Spectrograms for people to look at (the window's query/result plots), not for models."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from qvi_app.audio.load import resample


@dataclass(frozen=True)
class DisplaySpectrogram:
    db: np.ndarray          # (n_mels, frames), dB re the clip's peak, clipped to [-top_db, 0]
    hop_s: float            # seconds per frame
    f_max: float            # Hz of the top band
    duration: float         # seconds

    @property
    def extent(self) -> tuple[float, float, float, float]:
        """(left, right, bottom, top) for matplotlib's imshow: seconds and mel-band index."""
        return 0.0, self.db.shape[1] * self.hop_s, 0.0, float(self.db.shape[0])

    def band_at(self, hz: float) -> float:
        """Where ``hz`` lies on the plot's vertical axis (band ``i`` drawn from i to i + 1): the
        HTK mel scale torchaudio's filters use, their centres evenly spaced from 0 to ``f_max``."""
        def mel(f):
            return 2595.0 * np.log10(1.0 + f / 700.0)

        return float(mel(hz) * (self.db.shape[0] + 1) / mel(self.f_max) - 0.5)


_SR, _N_FFT, _HOP, _N_MELS, _TOP_DB = 22050, 1024, 256, 80, 80.0
_MEL = torchaudio.transforms.MelSpectrogram(_SR, n_fft=_N_FFT, hop_length=_HOP, n_mels=_N_MELS, f_max=_SR / 2)


def display_spectrogram(wave: np.ndarray, sr: int) -> DisplaySpectrogram:
    """Mel spectrogram in dB of a mono waveform, on the same axes for every input rate."""
    wave = resample(np.asarray(wave, dtype=np.float32), sr, _SR)
    if len(wave) < _N_FFT:
        wave = np.pad(wave, (0, _N_FFT - len(wave)))
    with torch.inference_mode():
        power = _MEL(torch.from_numpy(wave)).numpy()
    db = 10 * np.log10(np.maximum(power, 1e-12))
    db = np.clip(db - db.max(), -_TOP_DB, 0.0)
    return DisplaySpectrogram(db.astype(np.float32), _HOP / _SR, _SR / 2, len(wave) / _SR)
