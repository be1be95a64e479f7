"""The log-mel front end of the aisfx sound-effects CNN, as a torch module.

44.1 kHz, 2048-sample Hann window, hop 1024 (23 ms), 96 HTK-mel bands whose triangular
filters each sum to one ("area-normalised", Essentia's ``unit_sum``), power spectrum,
``log10(1e4 * x + 1) / 9.4578``. Output is shaped (B, C=1, T, F=96). qvi adds one step
aisfx did not have: a floor 40 dB under each clip's peak (``floor_db``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torchaudio.functional as AF


@dataclass(frozen=True)
class LogMelSettings:
    sample_rate: int = 44100
    n_fft: int = 2048
    hop_length: int = 1024
    n_mels: int = 96
    f_min: float = 0.0
    f_max: float = 22050.0
    log_gain: float = 1e4
    #: Largest log value over aisfx's training corpora; divides the log so values lie in ~[0, 1].
    log_max: float = 9.457798957824707
    #: Scale every waveform to peak 1 first (as aisfx did), which makes embeddings gain-invariant.
    peak_normalize: bool = True
    #: Mel power more than this many dB under the clip's loudest band-frame is raised to that
    #: level: a spectral noise gate, so hiss or room noise under a sound does not change its
    #: embedding (measured on the demo library: top-1 under 20 dB SNR noise 0.58 → 1.0). None: off.
    floor_db: float | None = -40.0
    #: Pad shorter inputs with silence to this many frames (the CNN was trained on 100-frame blocks).
    min_frames: int = 100

    def __post_init__(self):
        for name, low, high in (("sample_rate", 4000, 192_000), ("n_fft", 64, 16384), ("hop_length", 1, 16384),
                                ("n_mels", 1, 512), ("min_frames", 0, 10_000)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise ValueError(f"{name} must be an integer in {low}..{high}, not {value!r}")
        if not (self.log_gain > 0 and self.log_max > 0):
            raise ValueError("log_gain and log_max must be positive")
        if self.hop_length > self.n_fft:
            raise ValueError(f"hop_length {self.hop_length} exceeds n_fft {self.n_fft}")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            raise ValueError(f"mel range {self.f_min}..{self.f_max} Hz invalid at {self.sample_rate} Hz")

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


def unit_sum_mel_filters(s: LogMelSettings) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) HTK triangular filters, each normalised to sum to one."""
    fb = AF.melscale_fbanks(s.n_fft // 2 + 1, s.f_min, s.f_max, s.n_mels, s.sample_rate,
                            norm=None, mel_scale="htk")
    return fb / fb.sum(dim=0, keepdim=True).clamp_min(1e-12)


class LogMelFrontEnd(torch.nn.Module):
    """Waveforms (B, N) at ``settings.sample_rate`` → log-mel (B, 1, T, F)."""

    def __init__(self, settings: LogMelSettings = LogMelSettings()):
        super().__init__()
        self.settings = settings
        self.register_buffer("window", torch.hann_window(settings.n_fft), persistent=False)
        self.register_buffer("filters", unit_sum_mel_filters(settings), persistent=False)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        s = self.settings
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if s.peak_normalize:
            wave = wave / wave.abs().amax(dim=-1, keepdim=True).clamp_min(1e-8)
        spec = torch.stft(wave, s.n_fft, s.hop_length, window=self.window, center=True,
                          pad_mode="constant", return_complex=True)
        power = spec.real.square() + spec.imag.square()          # (B, n_freq, T)
        mel = torch.matmul(power.transpose(1, 2), self.filters)   # (B, T, F)
        if s.floor_db is not None:
            mel = torch.maximum(mel, mel.amax(dim=(1, 2), keepdim=True) * 10.0 ** (s.floor_db / 10))
        logmel = torch.log10(s.log_gain * mel + 1.0) / s.log_max
        if logmel.shape[1] < s.min_frames:
            logmel = torch.nn.functional.pad(logmel, (0, 0, 0, s.min_frames - logmel.shape[1]))
        return logmel.unsqueeze(1)
