"""Approximate nearest-neighbour search for large libraries (faiss IVF-Flat, inner product).

Chosen by measurement (docs/BENCHMARKS.md): on 2 cores, faiss's inverted-file index builds a
million 512-d vectors in about a minute (usearch's HNSW took about 4x longer to build at 100k) and answers in
well under a millisecond at recall@10 ≥ 0.98. Vectors are stored unquantised, so the scores it
returns are exact cosines; only which vectors get scored is approximate. A category filter is
applied inside the search (faiss ID selector), so every hit is from that category.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class AnnSettings:
    #: Libraries with at least this many sounds get an approximate index next to the exact one.
    threshold: int = 100_000
    #: Number of inverted lists = lists_per_sqrt * sqrt(N).
    lists_per_sqrt: float = 4.0
    #: Lists visited per query (recall vs speed).
    nprobe: int = 16
    #: Training sample for the coarse quantiser, per list.
    train_per_list: int = 40
    seed: int = 0


def _faiss():
    import faiss

    return faiss


class IvfIndex:
    FILE = "ann.faiss"

    def __init__(self, index, settings: AnnSettings):
        self._index = index
        self.settings = settings
        index.nprobe = settings.nprobe

    @classmethod
    def build(cls, embeddings: np.ndarray, settings: AnnSettings = AnnSettings()) -> "IvfIndex":
        faiss = _faiss()
        x = np.ascontiguousarray(embeddings, dtype=np.float32)
        n, d = x.shape
        nlist = max(1, min(int(settings.lists_per_sqrt * np.sqrt(n)), n // 39))  # faiss wants >= 39 points per list
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(settings.seed)
        sample = x[rng.choice(n, size=min(n, settings.train_per_list * nlist), replace=False)]
        index.cp.seed = settings.seed
        index.train(sample)
        index.add(x)
        return cls(index, settings)

    def save(self, path: Path) -> None:
        _faiss().write_index(self._index, str(path))

    @classmethod
    def load(cls, path: Path, settings: AnnSettings = AnnSettings()) -> "IvfIndex":
        return cls(_faiss().read_index(str(path)), settings)

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    def search(self, query: np.ndarray, k: int, allowed_rows: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """(rows, scores) of about the ``k`` best rows, best first; only ``allowed_rows`` if given."""
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        params = None
        if allowed_rows is not None:
            selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_rows, dtype=np.int64))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=self.settings.nprobe)
        scores, rows = self._index.search(q, k, params=params)
        keep = rows[0] >= 0
        return rows[0][keep], scores[0][keep]

    def memory_bytes(self) -> int:
        return self.ntotal * self._index.d * 4 + self._index.nlist * self._index.d * 4 + self.ntotal * 8
