"""The application layer: what the CLI and the window call; neither computes features itself."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qvi_app.audio import load_audio, trim_silence
from qvi_app.encoders import DEFAULT_ENCODER, Encoder, load_encoder
from qvi_app.errors import AudioError
from qvi_app.features.display import DisplaySpectrogram, display_spectrogram
from qvi_app.index import BuildReport, ReferenceIndex, SearchHit, describe, update_index
from qvi_app.paths import DEMO_INDEX, default_index_dir

#: A query whose peak is under this (about -60 dBFS) is treated as a silent recording.
SILENT_PEAK = 1e-3
MIN_QUERY_S = 0.05


@dataclass(frozen=True)
class SearchResult:
    hits: list[SearchHit]
    query_duration: float                       # seconds of audio after trimming
    timings_ms: dict[str, float] = field(default_factory=dict)
    query_vector: np.ndarray | None = None      # kept so a new category filter re-ranks without re-embedding
    category: str | None = None
    query_wave: np.ndarray | None = None        # the trimmed query audio (for replay, display, feedback)

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

    @property
    def model_id(self) -> str:
        return self.encoder.id

    @property
    def library_root(self) -> Path:
        return self.index.library_root

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
        trimmed = prepare_query(wave, sr)
        t1 = time.perf_counter()
        vec = self.encoder.embed(trimmed, sr, role="query")
        t2 = time.perf_counter()
        hits = self.index.search(vec, category=category, top_k=top_k)
        t3 = time.perf_counter()
        timings = {"load": _t_load, "trim": (t1 - t0) * 1e3, "embed": (t2 - t1) * 1e3, "rank": (t3 - t2) * 1e3}
        return SearchResult(hits, len(trimmed) / sr, timings, vec, category, trimmed)

    def rerank(self, result: SearchResult, category: str | None = None, top_k: int = 20) -> SearchResult:
        """The same query ranked again with another category filter or length (no re-embedding)."""
        t0 = time.perf_counter()
        hits = self.index.search(result.query_vector, category=category, top_k=top_k)
        timings = {"rank": (time.perf_counter() - t0) * 1e3}
        return SearchResult(hits, result.query_duration, timings, result.query_vector, category, result.query_wave)

    def load_reference(self, hit: SearchHit) -> tuple[np.ndarray, int]:
        """The audio of a library sound, for auditioning; a clear error if it has gone."""
        if not hit.path.is_file():
            raise AudioError(hit.path, "this sound is no longer in the library folder (moved or deleted?); "
                                       "re-index the library to update the list")
        return load_audio(hit.path)


def prepare_query(wave: np.ndarray, sr: int) -> np.ndarray:
    """Trim a recorded or loaded query; refuse silence and blips with a message a user can act on."""
    wave = np.asarray(wave, dtype=np.float32)
    if len(wave) == 0 or float(np.abs(wave).max()) < SILENT_PEAK:
        raise AudioError("query", "the recording is silent: check that the microphone is connected, "
                                  "selected and not muted, then record again")
    trimmed = trim_silence(wave, sr)
    if len(trimmed) < MIN_QUERY_S * sr:
        raise AudioError("query", f"too short after trimming silence (under {MIN_QUERY_S * 1000:.0f} ms); "
                                  "record a longer imitation")
    return trimmed


def spectrogram(wave: np.ndarray, sr: int) -> DisplaySpectrogram:
    """What the window plots for a query or a result (same axes for both)."""
    return display_spectrogram(wave, sr)


def build_index(library, index_dir=None, encoder_name: str = DEFAULT_ENCODER, checkpoint=None, categories_csv=None,
                **kwargs) -> BuildReport:
    """Index (or update the index of) a library folder; see :func:`qvi_app.index.update_index`."""
    encoder = load_encoder(encoder_name, checkpoint)
    index_dir = Path(index_dir) if index_dir else default_index_dir(Path(library), encoder_name)
    return update_index(library, index_dir, encoder, categories_csv=categories_csv, **kwargs)
