"""The 2DFT feature: magnitude of the 2D Fourier transform of a log-CQT spectrogram.

A pitch shift moves a CQT up or down its (log-frequency) axis and a delay moves it along
time; the 2D Fourier magnitude ignores such shifts (exactly for circular ones), so a hummed
imitation a few semitones off, or started late, still lands near its reference.

The time-modulation axis depends on the clip length, so it is pooled into fixed bands
in Hz (rate of change of the spectrogram) to give every clip the same vector length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from qvi_app.features.cqt import CQT, CQTSettings


@dataclass(frozen=True)
class TwoDFTSettings:
    cqt: CQTSettings = CQTSettings()
    #: Magnitudes are compressed as log1p(|CQT| / log_floor).
    log_floor: float = 1e-3
    #: Time-modulation bands (Hz): DC, then log-spaced edges from min to the frame rate's Nyquist.
    n_rate_bands: int = 24
    min_rate_hz: float = 0.25
    #: Clips are zero-padded to at least this many seconds before the 2D FFT.
    min_duration_s: float = 2.0

    def to_dict(self) -> dict:
        d = asdict(self)
        d["cqt"] = self.cqt.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "TwoDFTSettings":
        d = dict(d)
        return cls(cqt=CQTSettings(**d.pop("cqt")), **d)

    @property
    def dim(self) -> int:
        return self.cqt.n_bins * (self.n_rate_bands + 1)


def rate_band_matrix(n_rfft: int, frame_rate: float, s: TwoDFTSettings) -> torch.Tensor:
    """(n_rfft, n_rate_bands + 1) averaging matrix from rfft bins to fixed modulation bands."""
    bin_hz = np.arange(n_rfft) * (frame_rate / 2) / max(n_rfft - 1, 1)
    edges = np.geomspace(s.min_rate_hz, frame_rate / 2, s.n_rate_bands + 1)
    m = np.zeros((n_rfft, s.n_rate_bands + 1), dtype=np.float32)
    m[0, 0] = 1.0  # DC: the clip's average spectrum
    for b in range(s.n_rate_bands):
        inside = (bin_hz > 0) & (bin_hz >= edges[b]) & (bin_hz < edges[b + 1] if b < s.n_rate_bands - 1
                                                         else bin_hz <= edges[b + 1])
        if not inside.any():  # band narrower than one bin: take the nearest bin
            inside = np.zeros(n_rfft, bool)
            inside[max(1, int(np.argmin(np.abs(bin_hz - np.sqrt(edges[b] * edges[b + 1])))))] = True
        m[inside, b + 1] = 1.0 / inside.sum()
    return torch.from_numpy(m)


def twodft_features(wave: torch.Tensor, cqt: CQT, s: TwoDFTSettings) -> torch.Tensor:
    """Waveform (N,) at ``s.cqt.sample_rate`` → 2DFT magnitude (n_bins, n_rate_bands + 1), log-compressed."""
    wave = wave / wave.abs().max().clamp_min(1e-8)
    spec = torch.log1p(cqt(wave)[0] / s.log_floor)                    # (F, T)
    frame_rate = s.cqt.sample_rate / s.cqt.hop_length
    n_frames = max(spec.shape[1], int(np.ceil(s.min_duration_s * frame_rate)))
    n_fft = 1 << int(np.ceil(np.log2(n_frames)))
    mag = torch.fft.rfft2(spec, s=(spec.shape[0], n_fft)).abs()      # (F, n_fft//2+1)
    pooled = mag @ rate_band_matrix(mag.shape[1], frame_rate, s)
    return torch.log1p(pooled / spec.shape[0])
