"""Training and validation pairs: references and imitations decoded once, batched as log-mels."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from qvi_app.audio import load_audio, resample, trim_silence
from qvi_app.data.datasets import Reference
from qvi_app.data.simulate import SimulatorSettings, simulate_imitation
from qvi_app.errors import AudioError
from qvi_app.features.logmel import LogMelFrontEnd
from qvi_app.training.augment import AugmentSettings, aligned_crop, augment_logmel, augment_wave


def imitation_seed(ref_id: str, k: int, namespace: str, seed: int) -> int:
    """A stable seed per (reference, imitation number): the same pairs on every run and machine."""
    return zlib.crc32(f"{namespace}/{seed}/{k}/{ref_id}".encode())


@dataclass
class Pair:
    ref: Reference
    reference: np.ndarray                 # at the model's rate, trimmed, capped
    imitations: list[np.ndarray]          # at the model's rate


#: Above this much decoded audio, pairs are kept as float16 (half the memory; quantisation about
#: 66 dB under full scale, far below the front end's 40 dB floor). VimSketch's 12,500 imitations
#: at 44.1 kHz would otherwise take several GB.
COMPACT_ABOVE_BYTES = 2 << 30


class PairSource:
    """Audio of (reference, imitations) at ``sample_rate``: recorded imitations when the dataset
    has them, else ``n_simulated`` simulated ones per reference. Unreadable files are skipped
    and listed in ``skipped``."""

    def __init__(self, refs: list[Reference], sample_rate: int, *, n_simulated: int, namespace: str,
                 seed: int, max_seconds: float = 6.0, sim: SimulatorSettings = SimulatorSettings(),
                 progress: bool = True):
        self.sample_rate = sample_rate
        self.pairs: list[Pair] = []
        self.skipped: list[str] = []
        self.compact, self._bytes = False, 0
        for ref in tqdm(refs, desc=f"{namespace} pairs", unit="ref", disable=not progress, leave=False):
            try:
                wave = self._load(ref.path, max_seconds)
                if ref.imitations:
                    imis = [self._load(p, max_seconds) for p in ref.imitations]
                else:
                    imis = [trim_silence(resample(simulate_imitation(
                        wave, sample_rate, imitation_seed(ref.id, k, namespace, seed), sim), sim.sample_rate,
                        sample_rate), sample_rate) for k in range(n_simulated)]
            except AudioError as exc:
                self.skipped.append(f"{ref.id}: {exc.reason}")
                continue
            self.pairs.append(Pair(ref, wave, imis))
            self._bytes += wave.nbytes + sum(i.nbytes for i in imis)
            if self._bytes > COMPACT_ABOVE_BYTES and not self.compact:
                self.compact = True
                for p in self.pairs:
                    p.reference = p.reference.astype(np.float16)
                    p.imitations = [i.astype(np.float16) for i in p.imitations]
            elif self.compact:
                self.pairs[-1].reference = wave.astype(np.float16)
                self.pairs[-1].imitations = [i.astype(np.float16) for i in imis]

    def _load(self, path, max_seconds: float) -> np.ndarray:
        wave, _ = load_audio(path, target_sr=self.sample_rate)
        return trim_silence(wave, self.sample_rate)[: int(max_seconds * self.sample_rate)]

    def __len__(self) -> int:
        return len(self.pairs)


def pad_frames(logmels: list[torch.Tensor], frames: int) -> torch.Tensor:
    """Stack (1, T_i, F) log-mels into (B, 1, frames, F): crop or zero-pad each."""
    out = torch.zeros(len(logmels), 1, frames, logmels[0].shape[-1])
    for i, m in enumerate(logmels):
        t = min(frames, m.shape[1])
        out[i, :, :t] = m[:, :t]
    return out


def make_batch(source: PairSource, indices, frontend: LogMelFrontEnd, rng: np.random.Generator,
               augment: AugmentSettings, clip_seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(imitation log-mels, reference log-mels), each (B, 1, T, F), for the pairs at ``indices``."""
    sr = source.sample_rate
    frames = int(clip_seconds * sr / frontend.settings.hop_length) + 1
    imis, refs = [], []
    for i in indices:
        pair = source.pairs[i]
        imitation = pair.imitations[int(rng.integers(len(pair.imitations)))]
        ref_wave, imi_wave = aligned_crop([pair.reference, imitation], rng, augment.crop_min_fraction)
        for wave, out in ((ref_wave, refs), (imi_wave, imis)):
            wave = augment_wave(np.asarray(wave[: int(clip_seconds * sr * 1.5)], np.float32), sr, rng, augment)
            with torch.no_grad():
                logmel = frontend(torch.from_numpy(np.ascontiguousarray(wave, np.float32)))[0]
            out.append(augment_logmel(logmel, rng, augment))
    return pad_frames(imis, frames), pad_frames(refs, frames)
