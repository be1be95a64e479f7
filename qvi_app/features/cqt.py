"""Constant-Q transform on torch (torchaudio has none).

Each bin k has centre frequency ``f_min * 2**(k / bins_per_octave)`` and a Hann-windowed
complex kernel ``Q * sr / f_k`` samples long, so every bin spans the same number of cycles.
Kernels are normalised by their window sum: a sine of amplitude A at a bin's centre gives
magnitude A / 2 in that bin. Computed as one strided 1-D convolution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class CQTSettings:
    sample_rate: int = 8000
    f_min: float = 55.0
    #: Highest centre frequency wanted (Hz); the bin count is derived from it.
    f_max: float = 2090.0
    bins_per_octave: int = 12
    hop_length: int = 128

    def __post_init__(self):
        if not 0 < self.f_min < self.f_max < self.sample_rate / 2:
            raise ValueError(f"CQT range {self.f_min}..{self.f_max} Hz invalid at {self.sample_rate} Hz")

    @property
    def n_bins(self) -> int:
        return int(math.floor(self.bins_per_octave * math.log2(self.f_max / self.f_min))) + 1

    @property
    def q(self) -> float:
        return 1.0 / (2.0 ** (1.0 / self.bins_per_octave) - 1.0)

    def frequencies(self) -> torch.Tensor:
        k = torch.arange(self.n_bins, dtype=torch.float64)
        return self.f_min * 2.0 ** (k / self.bins_per_octave)

    def to_dict(self) -> dict:
        return asdict(self)


def cqt_kernels(s: CQTSettings) -> torch.Tensor:
    """Complex kernels (n_bins, L), each centred in a common odd length L."""
    freqs = s.frequencies()
    lengths = torch.ceil(s.q * s.sample_rate / freqs).long()
    width = int(lengths.max()) | 1
    kernels = torch.zeros(s.n_bins, width, dtype=torch.complex128)
    for k, (f, n) in enumerate(zip(freqs.tolist(), lengths.tolist())):
        t = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
        win = torch.hann_window(n, periodic=False, dtype=torch.float64)
        start = (width - n) // 2
        kernels[k, start:start + n] = win / win.sum() * torch.exp(2j * math.pi * f * t / s.sample_rate)
    return kernels


class CQT(torch.nn.Module):
    """Waveform (B, N) or (N,) at ``settings.sample_rate`` → CQT magnitude (B, n_bins, T)."""

    def __init__(self, settings: CQTSettings = CQTSettings()):
        super().__init__()
        self.settings = settings
        k = cqt_kernels(settings)
        # Real and imaginary parts as 2*n_bins real filters; conj() makes it a correlation.
        weight = torch.cat([k.real, -k.imag], dim=0).float().unsqueeze(1)
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        width = self.weight.shape[-1]
        out = torch.nn.functional.conv1d(wave.unsqueeze(1), self.weight,
                                         stride=self.settings.hop_length, padding=width // 2)
        re, im = out.chunk(2, dim=1)
        return torch.sqrt(re.square() + im.square())
