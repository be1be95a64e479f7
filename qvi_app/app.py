"""The application layer: what the CLI and the window call; neither computes features itself."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qvi_app.audio import load_audio, trim_silence
from qvi_app.encoders import Encoder, load_encoder
from qvi_app.errors import AudioError
from qvi_app.index import BuildReport, ReferenceIndex, SearchHit, describe, update_index
from qvi_app.paths import DEMO_INDEX, default_index_dir


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    query_duration: float                       # seconds of audio after trimming
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def total_ms(self) -> float:
        return sum(self.timings_ms.values())


class QviSession:
    """One open library: its index and the encoder that built it, kept loaded between queries."""

    def __init__(self, index_dir=None, checkpoint=None):
        self.index_dir = Path(index_dir) if index_dir else DEMO_INDEX
        probe = ReferenceIndex.open(self.index_dir)  # read the encoder name before loading weights
        self.encoder: Encoder = load_encoder(probe.meta["encoder_name"], checkpoint)
        self.index = ReferenceIndex.open(self.index_dir, encoder_id=self.encoder.id)

    def categories(self) -> dict[str, int]:
        return self.index.categories()

    def info(self) -> dict:
        return {**describe(self.index), "encoder_model": self.encoder.describe()}

    def search_file(self, path, category: str | None = None, top_k: int = 20) -> SearchResult:
        t0 = time.perf_counter()
        wave, sr = load_audio(path)
        return self.search_wave(wave, sr, category, top_k, _t_load=(time.perf_counter() - t0) * 1e3)

    def search_wave(self, wave: np.ndarray, sr: int, category: str | None = None, top_k: int = 20,
                    _t_load: float = 0.0) -> SearchResult:
        """Trim, embed and rank a query waveform (N,) at ``sr`` Hz."""
        t0 = time.perf_counter()
        trimmed = trim_silence(wave, sr)
        if len(trimmed) < 0.05 * sr:
            raise AudioError("query", "too short after trimming silence (under 50 ms)")
        t1 = time.perf_counter()
        vec = self.encoder.embed(trimmed, sr)
        t2 = time.perf_counter()
        hits = self.index.search(vec, category=category, top_k=top_k)
        t3 = time.perf_counter()
        timings = {"load": _t_load, "trim": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "rank": (t3 - t2) * 1e3}
        return SearchResult(hits, len(trimmed) / sr, timings)


def build_index(library, index_dir=None, encoder_name: str = "cnn", checkpoint=None, categories_csv=None,
                **kwargs) -> BuildReport:
    """Index (or update the index of) a library folder; see :func:`qvi_app.index.update_index`."""
    encoder = load_encoder(encoder_name, checkpoint)
    index_dir = Path(index_dir) if index_dir else default_index_dir(Path(library), encoder_name)
    return update_index(library, index_dir, encoder, categories_csv=categories_csv, **kwargs)
