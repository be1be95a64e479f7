"""A vocal-imitation simulator: renders what a person might produce imitating a sound.

It is a stand-in for real imitations, not one (see docs/TRAINING.md). From the reference it
measures, every 10 ms, loudness, brightness (spectral centroid), noisiness (spectral flatness),
periodicity and pitch; then it renders a voice that follows them loosely:

* timing: tempo ±20 %, a slowly wandering rate, a reaction delay, smoothed (dropped) detail,
  compressed dynamics, gaps gated to silence;
* pitch: the reference's pitch where it is periodic, else its brightness mapped to a pitch,
  folded by octaves into the imitator's register (within 80–1000 Hz), contour exaggerated or
  flattened, a few semitones off, drifting, sometimes an octave wrong for a stretch;
* source: glottal pulses where the reference is periodic, noise (fricative "ssss"/"shhh",
  breath "hhh", plosive bursts at sharp onsets) where it is noisy, mixed in between;
* filter: vowel formants moving between a dark and a bright vowel with the reference's
  brightness; fricative noise centred where the reference's noise is;
* recording: a laptop microphone's band (about 150 Hz to 5–7.5 kHz, uneven), a small room,
  background hiss, an optional breath before the imitation.

Deterministic for a given seed. Output is mono float32 at ``sample_rate`` (16 kHz).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

from qvi_app.audio.load import resample

_HOP_S = 0.01
_VOWELS = {  # F1, F2, F3 in Hz (adult averages)
    "u": (320, 800, 2240), "o": (480, 850, 2600), "a": (750, 1200, 2500),
    "e": (530, 1840, 2480), "i": (290, 2250, 3000),
}
_DARK, _BRIGHT = ("u", "o"), ("a", "e", "i")


@dataclass(frozen=True)
class SimulatorSettings:
    sample_rate: int = 16000
    #: Only the first seconds of a reference are imitated (a user imitates the gist).
    max_seconds: float = 6.0
    pitch_min_hz: float = 80.0
    pitch_max_hz: float = 1000.0
    tempo_spread: float = 0.2            # tempo factor in 1 ± this
    pitch_error_semitones: float = 3.0   # largest constant pitch error
    octave_error_prob: float = 0.25      # chance of a stretch sung an octave off
    breath_prob: float = 0.4             # chance of an audible breath before the imitation
    snr_db: tuple[float, float] = (25.0, 45.0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceTracks:
    """Frame tracks of a reference (100 frames per second)."""

    level_db: np.ndarray       # frame power in dB re the loudest frame (≤ 0)
    centroid_hz: np.ndarray
    flatness: np.ndarray       # 0 tonal .. 1 white noise
    periodicity: np.ndarray    # peak of the normalised autocorrelation, 0..1
    f0_hz: np.ndarray          # best autocorrelation pitch (meaningful where periodicity is high)
    onset: np.ndarray          # bool: sharp rise in level


def analyse(wave: np.ndarray, sr: int) -> ReferenceTracks:
    """Measure the frame tracks of a waveform (any rate; analysed at 16 kHz)."""
    x = resample(np.asarray(wave, np.float32), sr, 16000)
    if len(x) < 1024:
        x = np.pad(x, (0, 1024 - len(x)))
    hop, n_fft = 160, 1024
    with torch.inference_mode():
        spec = torch.stft(torch.from_numpy(x), n_fft, hop, window=torch.hann_window(n_fft), center=True,
                          return_complex=True)
        power = (spec.real.square() + spec.imag.square()).T.numpy().astype(np.float64)  # (T, F)
        ac = torch.fft.irfft(torch.from_numpy(power), n=n_fft, dim=1).numpy()
    freqs = np.fft.rfftfreq(n_fft, 1 / 16000)
    total = power.sum(axis=1) + 1e-12
    level = 10 * np.log10(total)
    level_db = level - level.max()
    centroid = (power * freqs).sum(axis=1) / total
    band = power[:, (freqs > 100) & (freqs < 6000)] + 1e-12
    flatness = np.exp(np.log(band).mean(axis=1)) / band.mean(axis=1)
    lo, hi = int(16000 / 1500), int(16000 / 60)
    norm = ac[:, lo:hi] / np.maximum(ac[:, :1], 1e-12)
    lag = norm.argmax(axis=1)
    periodicity = np.clip(norm[np.arange(len(norm)), lag], 0, 1)
    f0 = 16000 / (lag + lo)
    rise = level_db - np.concatenate([np.full(3, level_db[0]), level_db[:-3]])
    onset = (rise > 15) & (level_db > -30)
    return ReferenceTracks(level_db, centroid, flatness, periodicity, f0, onset)


def simulate_imitation(wave: np.ndarray, sr: int, seed: int,
                       settings: SimulatorSettings = SimulatorSettings()) -> np.ndarray:
    """One simulated vocal imitation of ``wave`` (mono, ``sr`` Hz), at ``settings.sample_rate``."""
    rng = np.random.default_rng(seed)
    wave = np.asarray(wave, np.float32)[: int(settings.max_seconds * sr)]
    tracks = analyse(wave, sr)
    plan = _performance(tracks, rng, settings)
    return _render(plan, rng, settings)


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1:
        return x
    k = np.hanning(n + 2)[1:-1]
    pad = np.pad(x, (n, n), mode="edge")
    return np.convolve(pad, k / k.sum(), mode="same")[n:-n]


def _slow_noise(rng, n: int, frames_per_knot: int) -> np.ndarray:
    knots = rng.standard_normal(n // frames_per_knot + 2)
    return np.interp(np.arange(n) / frames_per_knot, np.arange(len(knots)), knots)


def _performance(t: ReferenceTracks, rng: np.random.Generator, s: SimulatorSettings) -> dict:
    """Turn reference tracks into the imitator's frame-rate plan (level, pitch, voicing, colour)."""
    n_in = len(t.level_db)
    # Timing: tempo, wandering rate, reaction delay. p = position in the reference per output frame.
    tempo = rng.uniform(1 - s.tempo_spread, 1 + s.tempo_spread)
    rate_wobble = np.exp(0.12 * _slow_noise(rng, 4 * n_in + 100, 25))
    pos = np.cumsum(tempo * rate_wobble)
    pos = pos[pos < n_in - 1]
    delay = int(rng.uniform(5, 25))
    pos = np.concatenate([np.full(delay, -1.0), pos, np.full(int(rng.uniform(5, 20)), -1.0)])
    at = lambda track: np.interp(np.clip(pos, 0, n_in - 1), np.arange(n_in), track)  # noqa: E731
    silent = pos < 0

    # Loudness: smoothed (a voice cannot follow every detail), compressed, gated.
    level = _smooth(at(t.level_db), int(rng.integers(3, 9)))
    level = np.maximum(level, -45.0) * rng.uniform(0.55, 0.9)
    gate = at(t.level_db) < -35
    level[gate | silent] = -90.0
    amp = 10 ** (_smooth(level, 3) / 20)

    # Voicing: periodic and not flat → voiced; a per-person bias (hummers vs hissers).
    per, flat = at(t.periodicity), at(t.flatness)
    bias = rng.normal(0, 0.12)
    voiced = 1 / (1 + np.exp(-10 * (per - 0.55 - 0.6 * (flat - 0.2) - bias)))
    voiced = np.clip(_smooth(voiced, 4), 0, 1)

    # Pitch: measured where periodic, from brightness elsewhere; folded into the register.
    cent = np.clip(at(t.centroid_hz), 150, 7000)
    from_brightness = 2 ** np.interp(np.log2(cent), [np.log2(150), np.log2(7000)], [np.log2(110), np.log2(700)])
    w = np.clip((per - 0.4) / 0.4, 0, 1)
    f0 = 2 ** (w * np.log2(np.clip(at(t.f0_hz), 40, 4000)) + (1 - w) * np.log2(from_brightness))
    semis = 12 * np.log2(f0)
    centre = np.median(semis[~silent]) if (~silent).any() else semis.mean()
    semis = centre + (semis - centre) * rng.uniform(0.6, 1.4)          # contour flattened or exaggerated
    low = rng.uniform(np.log2(s.pitch_min_hz), np.log2(250)) * 12        # register: about two octaves
    high = min(low + 12 * rng.uniform(1.5, 2.5), 12 * np.log2(s.pitch_max_hz))
    semis = low + np.mod(semis - low, 12) + 12 * np.floor(rng.uniform(0, max(high - low - 12, 0.01)) / 12)
    semis += rng.uniform(-s.pitch_error_semitones, s.pitch_error_semitones) + 0.8 * _slow_noise(rng, len(semis), 40)
    if rng.random() < s.octave_error_prob:
        a = int(rng.integers(0, len(semis)))
        b = min(len(semis), a + int(rng.integers(20, 120)))
        semis[a:b] += 12 * rng.choice([-1, 1])
    if rng.random() < 0.3:
        semis += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * _HOP_S * np.arange(len(semis)))
    semis = np.clip(_smooth(semis, 3), 12 * np.log2(s.pitch_min_hz), 12 * np.log2(s.pitch_max_hz))

    bright = np.interp(np.log2(cent), [np.log2(400), np.log2(4000)], [0, 1])
    onsets = np.zeros(len(pos), bool)
    src = np.clip(pos, 0, n_in - 1).astype(int)
    onsets[np.flatnonzero(t.onset[src] & ~silent)] = True
    return {"amp": amp, "f0": 2 ** (semis / 12), "voiced": voiced, "bright": _smooth(bright, 5),
            "fric_hz": np.clip(cent * rng.uniform(0.7, 1.2), 1500, 7000), "onsets": onsets}


def _render(plan: dict, rng: np.random.Generator, s: SimulatorSettings) -> np.ndarray:
    sr = s.sample_rate
    hop = int(sr * _HOP_S)
    n_frames = len(plan["amp"])
    n = n_frames * hop
    frame_t = (np.arange(n_frames) + 0.5) * hop

    # Sources: a glottal pulse train (fractional impulses) and white noise.
    f0 = np.interp(np.arange(n), frame_t, plan["f0"])
    phase = np.cumsum(f0 / sr) + rng.random()
    k = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    frac = 1 - (phase[k + 1] - np.floor(phase[k + 1])) / np.maximum(phase[k + 1] - phase[k], 1e-9)
    jitter = 1 + 0.1 * rng.standard_normal(len(k))
    pulses = np.zeros(n + 2)
    np.add.at(pulses, k + 1, (1 - frac) * jitter)
    np.add.at(pulses, k + 2, frac * jitter)
    noise = rng.standard_normal(n + 2)

    n_fft, stft_hop = 512, 128
    win = torch.hann_window(n_fft, dtype=torch.float64)
    P = torch.stft(torch.from_numpy(pulses), n_fft, stft_hop, window=win, return_complex=True).numpy().T
    N = torch.stft(torch.from_numpy(noise), n_fft, stft_hop, window=win, return_complex=True).numpy().T
    T = P.shape[0]
    at = lambda track: np.interp(np.arange(T) * stft_hop, frame_t, track)  # noqa: E731
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)[None, :]

    # Voiced filter: formants glide between a dark and a bright vowel with the reference's brightness.
    dark = np.array(_VOWELS[rng.choice(_DARK)], float)
    bright = np.array(_VOWELS[rng.choice(_BRIGHT)], float)
    b = at(plan["bright"])[:, None]
    formants = dark[None, :] * (1 - b) + bright[None, :] * b                     # (T, 3)
    widths = np.array([90.0, 120.0, 180.0])
    gains = np.array([1.0, 0.6, 0.3])
    vowel = (gains * np.exp(-0.5 * ((freqs[..., None] - formants[:, None, :]) / widths) ** 2)).sum(-1)
    vowel = (vowel + 0.03) / (1 + freqs / 800)                                   # source tilt
    # Noise filter: a fricative band centred where the reference's energy is, plus breath.
    fc = at(plan["fric_hz"])[:, None]
    fric = np.exp(-0.5 * (np.log2(np.maximum(freqs, 1) / fc) / 0.45) ** 2) + 0.08
    burst = np.zeros(T)
    for i in np.flatnonzero(plan["onsets"]):
        j = int(i * hop / stft_hop)
        burst[j: j + 3] = 1.0
    v = at(plan["voiced"])[:, None]
    v = np.where(burst[:, None] > 0, 0.2, v)
    fric = np.where(burst[:, None] > 0, 1.0, fric)

    Y = np.sqrt(v) * vowel * P / (np.sqrt((np.abs(vowel * P) ** 2).sum(1, keepdims=True)) + 1e-9)
    Y += np.sqrt(1 - v) * fric * N / (np.sqrt((np.abs(fric * N) ** 2).sum(1, keepdims=True)) + 1e-9)
    Y *= at(plan["amp"])[:, None] * (1 + 2 * burst[:, None])
    # Laptop microphone: high-pass, low-pass at 5–7.5 kHz, a few dB of uneven response.
    cutoff = rng.uniform(5000, 7500)
    ripple = 10 ** (rng.uniform(2, 5) * _slow_noise(rng, freqs.shape[1], 24) / 20)
    mic = (freqs / 150) ** 2 / (1 + (freqs / 150) ** 2) / (1 + (freqs / cutoff) ** 8) * ripple[None, :]
    Y *= mic
    out = torch.istft(torch.from_numpy(Y.T.copy()), n_fft, stft_hop, window=win, length=n + 2).numpy()[:n]

    if rng.random() < s.breath_prob:                              # an in-breath before the imitation
        m = int(rng.uniform(0.15, 0.35) * sr)
        breath = np.convolve(rng.standard_normal(m), np.ones(4) / 4, "same") * np.hanning(m)
        breath *= rng.uniform(0.03, 0.1) * (np.abs(out).max() + 1e-6) / (np.abs(breath).max() + 1e-9)
        out = np.concatenate([breath, np.zeros(int(0.05 * sr)), out])
    out = _room(out, rng, sr)
    power = float(np.mean(out ** 2)) + 1e-12
    hiss = np.cumsum(rng.standard_normal(len(out))) * 0.02
    hiss = np.diff(hiss, prepend=0) + 0.3 * (hiss - _smooth(hiss, 64))
    snr = rng.uniform(*s.snr_db)
    out = out + hiss * np.sqrt(power / (np.mean(hiss ** 2) + 1e-12) / 10 ** (snr / 10))
    out *= rng.uniform(0.3, 0.9) / (np.abs(out).max() + 1e-9)
    return out.astype(np.float32)


def _room(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A small room: exponentially decaying noise tail (RT60 0.15–0.5 s) mixed under the direct sound."""
    rt60 = rng.uniform(0.15, 0.5)
    m = int(rt60 * sr)
    tail = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / m)
    tail *= rng.uniform(0.1, 0.35) / np.sqrt((tail ** 2).sum())
    ir = np.concatenate([[1.0], np.zeros(int(rng.uniform(0.002, 0.01) * sr)), tail])
    size = 1 << int(np.ceil(np.log2(len(x) + len(ir))))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x) + int(0.1 * sr)]
    return y
