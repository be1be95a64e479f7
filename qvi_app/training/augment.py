"""Augmentation applied to both sides of a training pair, each with a strength in the config.

Waveform level (numpy): aligned random crop, gain, added noise, pitch shift. Log-mel level
(torch, on the batch): time stretch (resampling the frame axis, pitch kept), time masking and
frequency masking (torchaudio's SpecAugment transforms).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch
import torchaudio.transforms as T
from torch.nn import functional as F

from qvi_app.audio.transform import add_noise, apply_gain, pitch_shift


@dataclass(frozen=True)
class AugmentSettings:
    crop_min_fraction: float = 0.7     # a random crop keeps at least this share of each clip
    gain_db: float = 6.0               # ± dB (only matters where the front end does not peak-normalise)
    noise_prob: float = 0.5
    noise_snr_db: tuple[float, float] = (12.0, 40.0)
    pitch_prob: float = 0.3
    pitch_semitones: float = 2.0       # ± semitones
    stretch_prob: float = 0.5
    stretch: float = 0.15              # rate in 1 ± this
    time_masks: int = 2
    time_mask_frames: int = 10
    freq_masks: int = 2
    freq_mask_bands: int = 10

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def off(cls) -> "AugmentSettings":
        return cls(crop_min_fraction=1.0, gain_db=0.0, noise_prob=0.0, pitch_prob=0.0, stretch_prob=0.0,
                   time_masks=0, freq_masks=0)


def aligned_crop(waves: list[np.ndarray], rng: np.random.Generator, min_fraction: float) -> list[np.ndarray]:
    """Crop every wave to the same relative span (an imitation follows its reference's order)."""
    if min_fraction >= 1:
        return waves
    frac = rng.uniform(min_fraction, 1.0)
    start = rng.uniform(0, 1 - frac)
    return [w[int(start * len(w)): max(int(start * len(w)) + 1, int((start + frac) * len(w)))] for w in waves]


def augment_wave(wave: np.ndarray, sr: int, rng: np.random.Generator, s: AugmentSettings) -> np.ndarray:
    if s.gain_db:
        wave = apply_gain(wave, rng.uniform(-s.gain_db, s.gain_db))
    if s.pitch_prob and rng.random() < s.pitch_prob and len(wave) > 2048:
        wave = pitch_shift(wave, sr, rng.uniform(-s.pitch_semitones, s.pitch_semitones))
    if s.noise_prob and rng.random() < s.noise_prob:
        wave = add_noise(wave, rng.uniform(*s.noise_snr_db), rng)
    return wave


def stretch_frames(logmel: torch.Tensor, rate: float) -> torch.Tensor:
    """(1, T, F) log-mel played ``rate`` times faster: frames resampled linearly."""
    t = logmel.shape[1]
    new_t = max(2, int(round(t / rate)))
    return F.interpolate(logmel.unsqueeze(0), size=(new_t, logmel.shape[2]), mode="bilinear",
                         align_corners=True).squeeze(0)


def augment_logmel(logmel: torch.Tensor, rng: np.random.Generator, s: AugmentSettings) -> torch.Tensor:
    """One clip's log-mel (1, T, F): time stretch, then masks."""
    if s.stretch_prob and rng.random() < s.stretch_prob:
        logmel = stretch_frames(logmel, rng.uniform(1 - s.stretch, 1 + s.stretch))
    x = logmel.transpose(1, 2)                       # torchaudio masks want (..., freq, time)
    for _ in range(s.time_masks):
        x = T.TimeMasking(min(s.time_mask_frames, max(1, x.shape[-1] // 4)))(x)
    for _ in range(s.freq_masks):
        x = T.FrequencyMasking(s.freq_mask_bands)(x)
    return x.transpose(1, 2)
