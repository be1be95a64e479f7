#!/usr/bin/env python
"""Recall, search time and memory of qvi's approximate index at ten million references.

Ten million embedded sounds cannot be made here (41 GB of float32 rows, twice while an index is
written, on a 46 GB disk), so the rows are generated: a Gaussian with the mean and the first 256
principal directions (and the residual spread) of the *real* embeddings that scripts/real_recall.py
caches (13,144 rows: corpus, train-sfx and demo sounds and simulated imitations), each row
normalised, drawn chunk by chunk from seeded generators so any chunk can be drawn again
identically. The real rows are appended, so real neighbours compete with ten million synthetic
ones. Queries are the cache's 720 real and simulated imitation embeddings.

The index is qvi's own (``IvfIndex.build`` with ``AnnSettings()``: PCA256, IVF with 4√N lists,
PQ32), built from a lazy view of the generated rows; the shortlist is what a search at this size
uses (1% of the library, at most 16,000). Brute force and the exact re-scoring of each shortlist
come from one pass over all rows (scores of every query against every chunk). Reported: recall@10
of the shortlist re-scored exactly, against brute force; the approximate search's time per query
(the re-scoring itself reads 16,000 rows, measured at a million by ``qvi bench --scale``); the
approximate index's memory.

    .venv/bin/python scripts/ann_10m.py --cache /tmp/real-recall.npz --n 10000000 --out docs/ann-10m.json

About 15 minutes on 2 cores; peak memory about 2 GB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qvi_app.index.ann import AnnSettings, IvfIndex  # noqa: E402

#: Rows per generated chunk: AnnSettings.add_batch, so each batch the index adds is one chunk.
CHUNK = AnnSettings().add_batch


class Generated:
    """N rows drawn like the real ones (module docstring), then the real rows: ``rows[i]``,
    slices and sorted index arrays, as ``IvfIndex.build`` reads them."""

    def __init__(self, real: np.ndarray, n: int, seed: int = 0, rank: int = 256):
        self.real, self.n, self.seed = real.astype(np.float32), n, seed
        self.mean = real.mean(axis=0)
        _, s, vt = np.linalg.svd(real - self.mean, full_matrices=False)
        self.basis = vt[:rank].astype(np.float32)
        self.scale = (s[:rank] / np.sqrt(len(real))).astype(np.float32)
        residual = (s[rank:] ** 2).sum() / len(real) / real.shape[1]
        self.noise = float(np.sqrt(residual))
        self.shape = (n + len(real), real.shape[1])

    def chunk(self, c: int) -> np.ndarray:
        start, stop = c * CHUNK, min(self.n, (c + 1) * CHUNK)
        rng = np.random.default_rng([self.seed, c])
        z = rng.standard_normal((stop - start, len(self.scale)), dtype=np.float32) * self.scale
        x = self.mean + z @ self.basis + self.noise * rng.standard_normal((stop - start, self.shape[1]),
                                                                          dtype=np.float32)
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    def chunks(self):
        """(first row, rows) over all rows, the real ones last."""
        for c in range(-(-self.n // CHUNK)):
            yield c * CHUNK, self.chunk(c)
        yield self.n, self.real

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, _ = key.indices(self.shape[0])
            key = np.arange(start, stop)
        key = np.asarray(key)
        out = np.empty((len(key), self.shape[1]), np.float32)
        synthetic = key < self.n
        out[~synthetic] = self.real[key[~synthetic] - self.n]
        rows = key[synthetic]
        for c in np.unique(rows // CHUNK):
            here = rows[rows // CHUNK == c]
            out[np.flatnonzero(synthetic)[rows // CHUNK == c]] = self.chunk(int(c))[here - c * CHUNK]
        return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="scripts/real_recall.py's embeddings (.npz)")
    ap.add_argument("--n", type=int, default=10_000_000, help="generated rows (default ten million)")
    ap.add_argument("--out", type=Path, default=Path("ann-10m.json"))
    ap.add_argument("--real-queries", type=int, default=116,
                    help="how many of the cache's queries, at its end, are recorded imitations (real_recall.py: 116)")
    a = ap.parse_args(argv)
    data = np.load(a.cache)
    rows = Generated(data["rows"], a.n)
    queries = np.ascontiguousarray(data["queries"], np.float32)
    total = rows.shape[0]
    print(f"{total:,} rows ({a.n:,} generated), {len(queries)} queries", flush=True)

    t = time.perf_counter()
    ann = IvfIndex.build(rows, AnnSettings(threshold=0))
    build_s = time.perf_counter() - t
    k = ann.shortlist
    print(f"approximate index built in {build_s:.0f} s; shortlist {k:,}", flush=True)
    search_ms, shortlists = [], []
    for q in queries:
        t = time.perf_counter()
        found, _ = ann.search(q, k)
        search_ms.append((time.perf_counter() - t) * 1e3)
        shortlists.append(np.sort(found))

    # one pass: brute-force top 10, and the exact scores of each query's shortlist rows
    best = np.full((len(queries), 10), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 10), np.int64)
    exact = [np.empty(len(s), np.float32) for s in shortlists]
    t = time.perf_counter()
    for start, x in rows.chunks():
        scores = queries @ x.T
        both = np.concatenate([best, scores], axis=1)
        ids = np.concatenate([best_rows, np.broadcast_to(np.arange(start, start + len(x)), scores.shape)], axis=1)
        top = np.argpartition(-both, 10, axis=1)[:, :10]
        best, best_rows = np.take_along_axis(both, top, 1), np.take_along_axis(ids, top, 1)
        for i, s in enumerate(shortlists):
            lo, hi = np.searchsorted(s, [start, start + len(x)])
            exact[i][lo:hi] = scores[i, s[lo:hi] - start]
    brute_s = time.perf_counter() - t
    recall = [len(set(s[np.argsort(-e)[:10]].tolist()) & set(b.tolist())) / 10
              for s, e, b in zip(shortlists, exact, best_rows)]
    n_real = min(a.real_queries, len(queries))
    result = {
        "rows": int(total), "generated": a.n, "real_rows": int(len(data["rows"])), "queries": int(len(queries)),
        "generator": ("Gaussian with the real rows' mean, first 256 principal directions and residual spread; "
                      "normalised"),
        "index": "qvi AnnSettings(): PCA256, IVF(4 sqrt N), PQ32, nprobe 32",
        "shortlist": int(k), "build_s": build_s, "brute_force_pass_s": brute_s,
        "recall_at_10": float(np.mean(recall)),
        "recall_at_10_real_imitations": float(np.mean(recall[-n_real:])) if n_real > 0 else None,
        "approximate_search_median_ms": float(np.median(search_ms)),
        "approximate_search_p95_ms": float(np.percentile(search_ms, 95)),
        "ann_memory_mb": ann.memory_bytes() / 1e6,
    }
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
