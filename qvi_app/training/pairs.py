"""Training and validation pairs: references and imitations decoded once, batched as log-mels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from qvi_app.audio import isolate_sound, load_audio, resample
from qvi_app.data.datasets import Reference
from qvi_app.data.simulate import SimulatorSettings, imitation_seed, simulate_imitation
from qvi_app.errors import AudioError
from qvi_app.training.augment import AugmentSettings, aligned_crop, augment_logmel, augment_wave


@dataclass
class Pair:
    ref: Reference
    reference: np.ndarray                 # trimmed, capped; at ``reference_sr``
    imitations: list[np.ndarray]          # at ``imitation_sr``
    reference_sr: int
    imitation_sr: int


#: Above this much audio, pairs are kept as float16 (half the memory; quantisation about 66 dB
#: under full scale, far below the front end's 40 dB floor). VimSketch's 12,500 imitations
#: would otherwise take several GB.
COMPACT_ABOVE_BYTES = 2 << 30


class PairSource:
    """Audio of (reference, imitations): recorded imitations when the dataset has them, else
    ``n_simulated`` simulated ones per reference. Unreadable files are skipped and listed in
    ``skipped``. Audio is kept at its own rate up to ``sample_rate`` (the model's) and brought
    to the model's rate per batch: simulated imitations are 16 kHz and most sound effects
    22.05 kHz, so 4,000 references with 8 imitations each fit in about 3 GB instead of 9."""

    def __init__(self, refs: list[Reference], sample_rate: int, *, n_simulated: int, namespace: str,
                 seed: int, max_seconds: float = 6.0, sim: SimulatorSettings = SimulatorSettings(),
                 progress: bool = True):
        self.sample_rate = sample_rate
        self.pairs: list[Pair] = []
        self.skipped: list[str] = []
        self.compact, self._bytes = False, 0
        for ref in tqdm(refs, desc=f"{namespace} pairs", unit="ref", disable=not progress, leave=False):
            try:
                wave, sr = self._load(ref.path, max_seconds)
                if ref.imitations:
                    loaded = [self._load(p, max_seconds) for p in ref.imitations]
                    imi_sr = min(r for _, r in loaded)
                    imis = [resample(w, r, imi_sr) for w, r in loaded]
                else:
                    imi_sr = sim.sample_rate
                    # prepared as a search prepares a query
                    imis = [isolate_sound(simulate_imitation(wave, sr, imitation_seed(ref.id, k, namespace, seed),
                                                                 sim), imi_sr) for k in range(n_simulated)]
            except AudioError as exc:
                self.skipped.append(f"{ref.id}: {exc.reason}")
                continue
            self.pairs.append(Pair(ref, wave, imis, sr, imi_sr))
            self._bytes += wave.nbytes + sum(i.nbytes for i in imis)
            if self._bytes > COMPACT_ABOVE_BYTES and not self.compact:
                self.compact = True
                for p in self.pairs:
                    p.reference = p.reference.astype(np.float16)
                    p.imitations = [i.astype(np.float16) for i in p.imitations]
            elif self.compact:
                self.pairs[-1].reference = wave.astype(np.float16)
                self.pairs[-1].imitations = [i.astype(np.float16) for i in imis]

    def _load(self, path, max_seconds: float) -> tuple[np.ndarray, int]:
        wave, sr = load_audio(path)
        if sr > self.sample_rate:
            wave, sr = resample(wave, sr, self.sample_rate), self.sample_rate
        return isolate_sound(wave, sr)[: int(max_seconds * sr)], sr

    def __len__(self) -> int:
        return len(self.pairs)


def pad_frames(logmels: list[torch.Tensor], frames: int) -> torch.Tensor:
    """Stack (1, T_i, F) log-mels into (B, 1, frames, F): crop or zero-pad each."""
    out = torch.zeros(len(logmels), 1, frames, logmels[0].shape[-1])
    for i, m in enumerate(logmels):
        t = min(frames, m.shape[1])
        out[i, :, :t] = m[:, :t]
    return out


def make_batch(source: PairSource, indices, frontend: torch.nn.Module, rng: np.random.Generator,
               augment: AugmentSettings, clip_seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(imitation features, reference features), each (B, 1, T, F), for the pairs at ``indices``."""
    sr = source.sample_rate
    frames = int(clip_seconds * sr / frontend.settings.hop_length) + 1
    imis, refs = [], []
    for i in indices:
        pair = source.pairs[i]
        imitation = pair.imitations[int(rng.integers(len(pair.imitations)))]
        ref_wave, imi_wave = aligned_crop([pair.reference, imitation], rng, augment.crop_min_fraction)
        for wave, rate, out in ((ref_wave, pair.reference_sr, refs), (imi_wave, pair.imitation_sr, imis)):
            wave = np.asarray(wave[: int(clip_seconds * rate * 1.5)], np.float32)
            wave = augment_wave(resample(wave, rate, sr), sr, rng, augment)
            with torch.no_grad():
                features = frontend(torch.from_numpy(np.ascontiguousarray(wave, np.float32)))[0]
            out.append(augment_logmel(features, rng, augment))
    return pad_frames(imis, frames), pad_frames(refs, frames)
