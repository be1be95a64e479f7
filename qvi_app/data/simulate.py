"""A vocal-imitation simulator: renders what a person might produce imitating a sound.

It is a stand-in for real imitations, not one (see docs/TRAINING.md). From the reference it
measures, every 10 ms, loudness, brightness (spectral centroid), noisiness (spectral flatness),
periodicity and pitch. Then one *person* (a voice: speaking pitch, vocal-tract size,
breathiness) imitates it with one *strategy*, drawn with odds that depend on the sound:

* ``follow``: a voice that follows the sound's loudness, pitch and noisiness at once (pulses
  where it is periodic, noise where it is noisy, a mix between);
* ``syllables``: onomatopoeia. Each sound event becomes a syllable (a consonant burst coloured
  by the event's brightness, then a voiced vowel, sometimes ending in a fricative), with pauses
  between syllables; a long steady sound becomes one drawn-out syllable ("vrooom") or a train
  of short ones ("brrr", "tss-tss");
* ``tonal``: a whistle (500-2500 Hz) or a closed-mouth hum following the pitch, or where there
  is none the brightness, of the sound;
* ``hiss``: unvoiced fricative noise ("shhh", "tsss") shaped by the sound's brightness.

Timing is human: a reaction delay, a tempo that wanders, short sounds drawn out (people take
about twice as long as a short sound to imitate it), quiet gaps gated to silence. The
recording is a laptop, phone or headset microphone in a small room, with a noise floor 35-65 dB
down and, sometimes, a click, breath or lip smack before or after the imitation.

The changes from the first simulator (voicing, pauses, syllables, whistles, duration, noise
floor) came from measuring real imitations against simulated ones (scripts/compare_imitations.py,
docs/TRAINING.md). Deterministic for a given seed. Output is mono float32 at ``sample_rate``.
"""

from __future__ import annotations

import zlib
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
_NASAL = (250, 1000, 2200)            # "mmm": a low first formant, weak upper ones
STRATEGIES = ("follow", "syllables", "tonal", "hiss")
_MICS = {  # (high-pass Hz, low-pass Hz range, how common)
    "laptop": (150, (5000, 7500), 0.5), "headset": (90, (6500, 7900), 0.3), "phone": (300, (3300, 4000), 0.2),
}


@dataclass(frozen=True)
class SimulatorSettings:
    sample_rate: int = 16000
    #: Only the first seconds of a reference are imitated (a user imitates the gist).
    max_seconds: float = 6.0
    #: Base odds of (follow, syllables, tonal, hiss); each is then scaled by how well it suits
    #: the sound (tonal sounds favour ``tonal``, articulated ones ``syllables``, noisy ones ``hiss``).
    strategy_weights: tuple[float, float, float, float] = (1.0, 1.6, 0.7, 0.4)
    pitch_min_hz: float = 70.0
    pitch_max_hz: float = 1200.0
    #: A person's speaking pitch, log-uniform (men about 110 Hz, women 210, children 300).
    speaker_f0_hz: tuple[float, float] = (90.0, 330.0)
    tempo_spread: float = 0.25           # tempo factor in 1 ± this
    #: Sounds shorter than ``short_s`` are drawn out by a factor in this range, log-uniform.
    short_stretch: tuple[float, float] = (1.0, 3.0)
    short_s: float = 1.5
    pitch_error_semitones: float = 3.0   # largest constant pitch error
    octave_error_prob: float = 0.25      # chance of a stretch sung an octave off
    pause_prob: float = 0.7              # syllables: chance of a pause (80-300 ms) after each syllable
    breath_prob: float = 0.3             # chance of an audible breath before the imitation
    extra_sound_prob: float = 0.3        # chance of a click or lip smack before or after it
    snr_db: tuple[float, float] = (35.0, 65.0)

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


@dataclass(frozen=True)
class Voice:
    """The person imitating: speaking pitch (Hz), vocal-tract scale, breathiness 0..1."""

    f0_hz: float
    formant_scale: float
    breathiness: float

    @classmethod
    def draw(cls, rng: np.random.Generator, s: SimulatorSettings) -> "Voice":
        f0 = float(np.exp(rng.uniform(*np.log(s.speaker_f0_hz))))
        # smaller vocal tracts (higher voices) have higher formants; ±8% between people of one pitch
        return cls(f0, float((f0 / 130.0) ** 0.25 * rng.uniform(0.92, 1.08)), float(rng.uniform(0.0, 0.4)))


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


def imitation_seed(ref_id: str, k: int, namespace: str, seed: int) -> int:
    """A stable seed per (reference, imitation number): the same simulated imitations on every
    run and machine (training pairs, query banks and evaluation each in their own namespace)."""
    return zlib.crc32(f"{namespace}/{seed}/{k}/{ref_id}".encode())


def simulate_imitation(wave: np.ndarray, sr: int, seed: int, settings: SimulatorSettings = SimulatorSettings(),
                       strategy: str | None = None) -> np.ndarray:
    """One simulated vocal imitation of ``wave`` (mono, ``sr`` Hz), at ``settings.sample_rate``.

    ``strategy`` forces one of :data:`STRATEGIES` (tests, inspection); by default it is drawn."""
    rng = np.random.default_rng(seed)
    wave = np.asarray(wave, np.float32)[: int(settings.max_seconds * sr)]
    tracks = analyse(wave, sr)
    if strategy is None:
        odds = strategy_odds(tracks, settings)
        strategy = STRATEGIES[int(rng.choice(len(STRATEGIES), p=odds / odds.sum()))]
    elif strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {STRATEGIES}, not {strategy!r}")
    voice = Voice.draw(rng, settings)
    plan = _PLANNERS[strategy](tracks, rng, settings, voice)
    return _record(_render(plan, rng, settings, voice), rng, settings)


def strategy_odds(t: ReferenceTracks, s: SimulatorSettings) -> np.ndarray:
    """Odds of each strategy for this sound: the base weights times how well each suits it."""
    active = t.level_db > -30
    tonal = float(np.median(t.periodicity[active])) if active.any() else 0.0
    noisy = float(np.median(t.flatness[active])) if active.any() else 0.0
    onsets_per_s = t.onset.sum() / max(len(t.level_db) * _HOP_S, 0.1)
    fit = np.array([1.0, 1.0 + min(onsets_per_s, 4.0) / 2, 0.2 + 2.5 * max(tonal - 0.3, 0.0), 0.2 + 2.0 * noisy])
    return np.asarray(s.strategy_weights, float) * fit


# -- timing and pitch, shared by the strategies -------------------------------------------------
def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    if n <= 1 or len(x) == 0:
        return x
    k = np.hanning(n + 2)[1:-1]
    pad = np.pad(x, (n, n), mode="edge")
    return np.convolve(pad, k / k.sum(), mode="same")[n:-n]


def _slow_noise(rng, n: int, frames_per_knot: int) -> np.ndarray:
    knots = rng.standard_normal(n // frames_per_knot + 2)
    return np.interp(np.arange(n) / frames_per_knot, np.arange(len(knots)), knots)


def _timeline(t: ReferenceTracks, rng: np.random.Generator, s: SimulatorSettings) -> np.ndarray:
    """Position in the reference (frames) of every output frame; -1 before and after the imitation."""
    n_in = len(t.level_db)
    rate = rng.uniform(1 - s.tempo_spread, 1 + s.tempo_spread)
    if n_in * _HOP_S < s.short_s:                        # short sounds are drawn out
        rate /= np.exp(rng.uniform(*np.log(s.short_stretch)))
    wobble = np.exp(0.12 * _slow_noise(rng, int(4 * n_in / rate) + 100, 25))
    pos = np.cumsum(rate * wobble)
    pos = pos[pos < n_in - 1]
    return np.concatenate([np.full(int(rng.uniform(5, 25)), -1.0), pos, np.full(int(rng.uniform(5, 20)), -1.0)])


def _at(t_track: np.ndarray, pos: np.ndarray) -> np.ndarray:
    return np.interp(np.clip(pos, 0, len(t_track) - 1), np.arange(len(t_track)), t_track)


def _pitch(t: ReferenceTracks, pos: np.ndarray, rng, s: SimulatorSettings, low_hz: float, span_octaves: float,
           exact: bool = False) -> np.ndarray:
    """A sung contour: the reference's pitch where periodic, its brightness elsewhere, folded by
    octaves into [low_hz, low_hz * 2**span_octaves], flattened or exaggerated, off by a few
    semitones and drifting (``exact``: no error, as a good whistler)."""
    silent = pos < 0
    per = _at(t.periodicity, pos)
    cent = np.clip(_at(t.centroid_hz, pos), 150, 7000)
    from_brightness = 2 ** np.interp(np.log2(cent), [np.log2(150), np.log2(7000)], [np.log2(110), np.log2(700)])
    w = np.clip((per - 0.4) / 0.4, 0, 1)
    f0 = 2 ** (w * np.log2(np.clip(_at(t.f0_hz, pos), 40, 4000)) + (1 - w) * np.log2(from_brightness))
    semis = 12 * np.log2(f0)
    centre = np.median(semis[~silent]) if (~silent).any() else semis.mean()
    semis = centre + (semis - centre) * (1.0 if exact else rng.uniform(0.6, 1.5))
    low = 12 * np.log2(low_hz)
    high = low + 12 * span_octaves
    semis = low + np.mod(semis - low, 12) + 12 * np.floor(rng.uniform(0, max(high - low - 12, 0.01)) / 12)
    if not exact:
        semis += rng.uniform(-s.pitch_error_semitones, s.pitch_error_semitones) + 0.8 * _slow_noise(rng, len(semis), 40)
        if rng.random() < s.octave_error_prob:
            a = int(rng.integers(0, len(semis)))
            b = min(len(semis), a + int(rng.integers(20, 120)))
            semis[a:b] += 12 * rng.choice([-1, 1])
    if rng.random() < 0.3:
        semis += rng.uniform(0.2, 0.5) * np.sin(2 * np.pi * rng.uniform(4.5, 6.5) * _HOP_S * np.arange(len(semis)))
    return 2 ** (_smooth(semis, 3) / 12)


def _loudness(t: ReferenceTracks, pos: np.ndarray, rng) -> np.ndarray:
    """Amplitude that follows the reference, smoothed (a voice cannot follow every detail),
    compressed, and gated to silence in its quiet gaps."""
    level = _smooth(_at(t.level_db, pos), int(rng.integers(3, 9)))
    level = np.maximum(level, -45.0) * rng.uniform(0.55, 0.9)
    level[(_at(t.level_db, pos) < rng.uniform(-35, -20)) | (pos < 0)] = -90.0      # quieter parts left out
    return 10 ** (_smooth(level, 3) / 20)


def _register(voice: Voice, rng) -> tuple[float, float]:
    """Lowest pitch (Hz) and span (octaves) a person sings an imitation in: from a bit under
    their speaking pitch to two or three octaves above (imitations are pitched up)."""
    return voice.f0_hz * rng.uniform(0.7, 1.0), rng.uniform(1.5, 3.0)


def _plan(n: int, **tracks) -> dict:
    base = {"amp": np.zeros(n), "f0": np.full(n, 150.0), "voiced": np.zeros(n), "bright": np.full(n, 0.5),
            "fric_hz": np.full(n, 3000.0), "bursts": np.zeros(n, bool), "whistle": np.zeros(n), "nasal": np.zeros(n)}
    base.update(tracks)
    return base


# -- the strategies ------------------------------------------------------------------------------
def _follow(t: ReferenceTracks, rng, s: SimulatorSettings, voice: Voice) -> dict:
    """Voice and noise mixed as the sound is periodic or noisy, following it throughout."""
    pos = _timeline(t, rng, s)
    per, flat = _at(t.periodicity, pos), _at(t.flatness, pos)
    bias = rng.normal(0.15, 0.15)                     # hummers vs hissers; people voice more than not
    voiced = np.clip(_smooth(1 / (1 + np.exp(-10 * (per - 0.55 - 0.6 * (flat - 0.2) + bias))), 4), 0, 1)
    cent = np.clip(_at(t.centroid_hz, pos), 150, 7000)
    src = np.clip(pos, 0, len(t.onset) - 1).astype(int)
    return _plan(len(pos), amp=_loudness(t, pos, rng), f0=_pitch(t, pos, rng, s, *_register(voice, rng)),
                 voiced=voiced, bright=_smooth(np.interp(np.log2(cent), [np.log2(400), np.log2(4000)], [0, 1]), 5),
                 fric_hz=np.clip(cent * rng.uniform(0.7, 1.2), 1500, 7000), bursts=t.onset[src] & (pos >= 0))


def _events(t: ReferenceTracks) -> list[tuple[int, int]]:
    """(start, end) reference frames of the sound's events: loud stretches, split at onsets."""
    active = _smooth(t.level_db, 3) > -28
    cuts = set(np.flatnonzero(t.onset).tolist())
    events, start = [], None
    for i, on in enumerate(np.append(active, False)):
        if on and start is not None and i in cuts and i - start >= 4:
            events.append((start, i))
            start = i
        elif on and start is None:
            start = i
        elif not on and start is not None:
            if i - start >= 3:
                events.append((start, i))
            start = None
    return events or [(0, len(t.level_db))]


def _syllables(t: ReferenceTracks, rng, s: SimulatorSettings, voice: Voice) -> dict:
    """Onomatopoeia: consonant + vowel per event, pauses between, steady stretches as trains."""
    rate = rng.uniform(1 - s.tempo_spread, 1 + s.tempo_spread)
    if len(t.level_db) * _HOP_S < s.short_s:
        rate /= np.exp(rng.uniform(*np.log(s.short_stretch)))
    low, span = _register(voice, rng)
    train_hz = rng.uniform(3.0, 8.0)                     # "bu-bu-bu" or "tsk-tsk" speed
    consonant_bright = rng.uniform(0.7, 1.3)
    parts = [_plan(int(rng.uniform(5, 25)))]             # reaction delay
    for start, end in _events(t):
        n_out = max(8, int((end - start) / rate))
        noisy = float(np.median(t.flatness[start:end])) > 0.25
        steady = not t.onset[start + 1:end].any()
        if steady and n_out * _HOP_S > 0.5 and rng.random() < 0.5:
            lengths = np.diff(np.linspace(0, n_out, max(2, int(n_out * _HOP_S * train_hz)) + 1).astype(int))
        else:
            lengths = np.array([n_out])
        offset = 0
        for n in lengths:
            pos = start + (offset + np.arange(n)) * (end - start) / n_out
            offset += n
            amp = _loudness(t, pos, rng)
            amp = np.maximum(amp, 0.2 * amp.max())        # a vowel carries through the sound's dips
            attack, release = min(2, n // 3), min(6, n // 3)
            amp[:attack] *= np.linspace(0.3, 1, attack)
            amp[n - release:] *= np.linspace(1, 0, release)
            cent = np.clip(_at(t.centroid_hz, pos), 150, 7000)
            consonant = min(n // 2, int(rng.uniform(2, 6)))
            voiced = np.ones(n) * rng.uniform(0.85, 1.0)
            voiced[:consonant] = 0.0
            if noisy and rng.random() < 0.4:                 # "shhh"-ending syllable
                voiced[int(n * rng.uniform(0.4, 0.7)):] = 0.0
            bursts = np.zeros(n, bool)
            bursts[0] = rng.random() < 0.7
            parts.append(_plan(n, amp=amp, f0=_pitch(t, pos, rng, s, low, span), voiced=_smooth(voiced, 2),
                               bright=np.clip(np.interp(np.log2(cent), [np.log2(400), np.log2(4000)], [0, 1]), 0, 1),
                               fric_hz=np.clip(cent * consonant_bright, 1500, 7000), bursts=bursts))
            if rng.random() < s.pause_prob:
                parts.append(_plan(int(rng.uniform(8, 30))))
    parts.append(_plan(int(rng.uniform(5, 20))))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _tonal(t: ReferenceTracks, rng, s: SimulatorSettings, voice: Voice) -> dict:
    """A whistle (pure tone, 500-2500 Hz) or a closed-mouth hum along the sound's pitch contour."""
    pos = _timeline(t, rng, s)
    amp = _loudness(t, pos, rng)
    if rng.random() < 0.5:
        f0 = _pitch(t, pos, rng, s, rng.uniform(500, 900), rng.uniform(1.0, 1.5), exact=rng.random() < 0.5)
        return _plan(len(pos), amp=amp, f0=f0, whistle=np.where(pos >= 0, 1.0, 0.0))
    return _plan(len(pos), amp=amp, f0=_pitch(t, pos, rng, s, *_register(voice, rng)), voiced=np.ones(len(pos)),
                 bright=np.zeros(len(pos)), nasal=np.ones(len(pos)))


def _hiss(t: ReferenceTracks, rng, s: SimulatorSettings, voice: Voice) -> dict:
    """Unvoiced fricative noise shaped by the sound's brightness, "tss" bursts at its onsets."""
    pos = _timeline(t, rng, s)
    cent = np.clip(_at(t.centroid_hz, pos), 150, 7000)
    src = np.clip(pos, 0, len(t.onset) - 1).astype(int)
    return _plan(len(pos), amp=_loudness(t, pos, rng), fric_hz=np.clip(cent * rng.uniform(0.8, 1.5), 1500, 7000),
                 bursts=t.onset[src] & (pos >= 0))


_PLANNERS = {"follow": _follow, "syllables": _syllables, "tonal": _tonal, "hiss": _hiss}


# -- rendering and recording ---------------------------------------------------------------------
def _render(plan: dict, rng: np.random.Generator, s: SimulatorSettings, voice: Voice) -> np.ndarray:
    sr = s.sample_rate
    hop = int(sr * _HOP_S)
    n_frames = len(plan["amp"])
    n = n_frames * hop
    frame_t = (np.arange(n_frames) + 0.5) * hop

    # Sources: a glottal pulse train (fractional impulses), white noise, and a whistle's sine.
    f0 = np.interp(np.arange(n + 2), frame_t, plan["f0"])
    phase = np.cumsum(f0 / sr) + rng.random()
    k = np.flatnonzero(np.diff(np.floor(phase)) > 0)
    k = k[k + 2 < n + 2]
    frac = 1 - (phase[k + 1] - np.floor(phase[k + 1])) / np.maximum(phase[k + 1] - phase[k], 1e-9)
    jitter = 1 + 0.1 * rng.standard_normal(len(k))
    pulses = np.zeros(n + 2)
    np.add.at(pulses, k + 1, (1 - frac) * jitter)
    np.add.at(pulses, k + 2, frac * jitter)
    noise = rng.standard_normal(n + 2)
    sine = np.sin(2 * np.pi * phase)

    n_fft, stft_hop = 512, 128
    win = torch.hann_window(n_fft, dtype=torch.float64)
    stft = lambda x: torch.stft(torch.from_numpy(x), n_fft, stft_hop, window=win,  # noqa: E731
                                return_complex=True).numpy().T
    P, N, W = stft(pulses), stft(noise), stft(sine)
    T = P.shape[0]
    at = lambda track: np.interp(np.arange(T) * stft_hop, frame_t, track)  # noqa: E731
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)[None, :]

    # Voiced filter: formants glide between a dark and a bright vowel with the sound's
    # brightness, scaled by the speaker's vocal tract; a hum uses the nasal "mmm".
    dark = np.array(_VOWELS[rng.choice(_DARK)], float)
    bright = np.array(_VOWELS[rng.choice(_BRIGHT)], float)
    b = at(plan["bright"])[:, None]
    nasal = at(plan["nasal"])[:, None]
    formants = (dark[None, :] * (1 - b) + bright[None, :] * b) * (1 - nasal) + np.array(_NASAL)[None, :] * nasal
    formants = formants * voice.formant_scale
    widths = np.array([90.0, 120.0, 180.0])
    gains = np.array([1.0, 0.6, 0.3])[None, None, :] * np.concatenate([np.ones((T, 1)), 1 - 0.8 * nasal,
                                                                          1 - 0.8 * nasal], axis=1)[:, None, :]
    vowel = (gains * np.exp(-0.5 * ((freqs[..., None] - formants[:, None, :]) / widths) ** 2)).sum(-1)
    vowel = (vowel + 0.03) / (1 + freqs / 800)                                   # source tilt
    # Noise filter: a fricative band centred where the sound's energy is, plus breath.
    fc = at(plan["fric_hz"])[:, None]
    fric = np.exp(-0.5 * (np.log2(np.maximum(freqs, 1) / fc) / 0.45) ** 2) + 0.08
    burst = np.zeros(T)
    for i in np.flatnonzero(plan["bursts"]):
        j = int(i * hop / stft_hop)
        burst[j: j + 3] = 1.0
    v = at(plan["voiced"])[:, None]
    w = at(plan["whistle"])[:, None]
    v = np.where(burst[:, None] > 0, 0.2, v)
    fric = np.where(burst[:, None] > 0, 1.0, fric)

    def unit(x):
        return x / (np.sqrt((np.abs(x) ** 2).sum(1, keepdims=True)) + 1e-9)

    breathy = 0.3 * voice.breathiness          # at most 12% of the voiced energy: harmonics-to-noise ≥ 9 dB
    Y = np.sqrt(v * (1 - w)) * (np.sqrt(1 - breathy) * unit(vowel * P) + np.sqrt(breathy) * unit(vowel * N))
    Y += np.sqrt(np.clip(1 - v - w, 0, 1)) * unit(fric * N)
    Y += np.sqrt(w) * (unit(W) + 0.1 * unit(np.exp(-0.5 * ((freqs - at(plan["f0"])[:, None]) / 200) ** 2) * N))
    Y *= at(plan["amp"])[:, None] * (1 + 2 * burst[:, None])
    return torch.istft(torch.from_numpy(Y.T.copy()), n_fft, stft_hop, window=win, length=n + 2).numpy()[:n]


def _record(out: np.ndarray, rng: np.random.Generator, s: SimulatorSettings) -> np.ndarray:
    """A microphone, a room, a breath or a click around the imitation, and the noise floor."""
    sr = s.sample_rate
    peak = np.abs(out).max() + 1e-6
    if rng.random() < s.breath_prob:                              # an in-breath before the imitation
        m = int(rng.uniform(0.15, 0.35) * sr)
        breath = np.convolve(rng.standard_normal(m), np.ones(4) / 4, "same") * np.hanning(m)
        out = np.concatenate([breath * rng.uniform(0.03, 0.1) * peak / (np.abs(breath).max() + 1e-9),
                              np.zeros(int(0.05 * sr)), out])
    if rng.random() < s.extra_sound_prob:                         # a mouse click or lip smack
        m = int(rng.uniform(0.005, 0.03) * sr)
        click = rng.standard_normal(m) * np.exp(-np.arange(m) / (0.2 * m)) * rng.uniform(0.05, 0.5) * peak
        gap = np.zeros(int(rng.uniform(0.1, 0.6) * sr))
        out = np.concatenate([click, gap, out]) if rng.random() < 0.5 else np.concatenate([out, gap, click])
    # The microphone: a high-pass, a low-pass, a few dB of uneven response.
    highpass, lowpass, _ = _MICS[list(_MICS)[rng.choice(len(_MICS), p=[m[2] for m in _MICS.values()])]]
    n_fft = 1 << int(np.ceil(np.log2(len(out) + 1)))
    freqs = np.fft.rfftfreq(n_fft, 1 / sr)
    cutoff = rng.uniform(*lowpass)
    ripple = 10 ** (rng.uniform(2, 5) * _slow_noise(rng, len(freqs), max(1, len(freqs) // 21)) / 20)
    mic = (freqs / highpass) ** 2 / (1 + (freqs / highpass) ** 2) / (1 + (freqs / cutoff) ** 8) * ripple
    out = np.fft.irfft(np.fft.rfft(out, n_fft) * mic, n_fft)[: len(out)]
    out = _room(out, rng, sr)
    power = float(np.mean(out ** 2)) + 1e-12
    hiss = np.cumsum(rng.standard_normal(len(out))) * 0.02
    hiss = np.diff(hiss, prepend=0) + 0.3 * (hiss - _smooth(hiss, 64))
    snr = rng.uniform(*s.snr_db)
    out = out + hiss * np.sqrt(power / (np.mean(hiss ** 2) + 1e-12) / 10 ** (snr / 10))
    out *= rng.uniform(0.3, 0.9) / (np.abs(out).max() + 1e-9)
    return out.astype(np.float32)


def _room(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A small room: exponentially decaying noise tail (RT60 0.1-0.5 s) mixed under the direct sound."""
    rt60 = rng.uniform(0.1, 0.5)
    m = int(rt60 * sr)
    tail = rng.standard_normal(m) * np.exp(-6.9 * np.arange(m) / m)
    tail *= rng.uniform(0.05, 0.3) / np.sqrt((tail ** 2).sum())
    ir = np.concatenate([[1.0], np.zeros(int(rng.uniform(0.002, 0.01) * sr)), tail])
    size = 1 << int(np.ceil(np.log2(len(x) + len(ir))))
    return np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x) + int(0.1 * sr)]
