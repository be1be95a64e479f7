"""How loud a sound is while it sounds, and the gain that plays results at one loudness.

The demo library's sounds lie between -40 and -12 dBFS (5th to 95th percentile of the level
below, 202 of its 604 files): auditioned one after another at their own levels, a quiet match
after a loud one is missed, and a loud one after a quiet one startles.
"""

from __future__ import annotations

import numpy as np

#: Where results are played: the level of a typical demo sound (its median is -23.6 dBFS) with
#: a few dB of room under full scale.
AUDITION_DB = -20.0
FRAME_S = 0.05
MAX_FRAMES = 4000             # longer sounds are measured on every n-th frame (a 600 s file: 3 in 12000)


def active_level_db(wave: np.ndarray, sr: int) -> float | None:
    """The RMS level (dBFS) of the louder half of the sound's 50 ms frames: what it sounds like
    while it sounds, not diluted by the silence around it. None for digital silence. A stereo
    (frames, 2) sound is measured by its channels' mean power."""
    if wave.ndim == 2:                       # the channels' mean power, sample by sample
        wave = np.sqrt(np.mean(np.square(wave, dtype=np.float64), axis=1))
    n = max(1, int(FRAME_S * sr))
    frames = len(wave) // n
    if frames == 0:
        power = np.array([np.mean(np.square(wave, dtype=np.float64))]) if len(wave) else np.zeros(1)
    else:
        step = max(1, frames // MAX_FRAMES)
        power = np.mean(np.square(wave[: frames * n].reshape(frames, n)[::step], dtype=np.float64), axis=1)
    power = np.sort(power)[len(power) // 2:]
    mean = float(np.mean(power))
    return None if mean < 1e-14 else 10 * np.log10(mean)


def audition_gain(wave: np.ndarray, sr: int, target_db: float = AUDITION_DB, ceiling: float = 0.99,
                  most_db: float = 30.0) -> float:
    """The gain that plays ``wave`` at ``target_db`` (see :func:`active_level_db`), never taking
    its peak over ``ceiling`` and never raising it by more than ``most_db`` (a near-silent file
    stays near silent, not hiss at full level). 1 for silence."""
    level = active_level_db(wave, sr)
    peak = float(np.max(np.abs(wave))) if len(wave) else 0.0
    if level is None or peak <= 0:
        return 1.0
    gain = 10 ** (min(target_db - level, most_db) / 20)
    return float(min(gain, ceiling / peak))
