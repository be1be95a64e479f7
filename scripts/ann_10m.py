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
PQ32; ``--dims-per-byte 4`` for PQ64), built once from a lazy view of the generated rows, then
searched with each ``--nprobe`` × ``--shortlist`` (default: what a search at this size uses, 1%
of the library, at most ``AnnSettings.shortlist_max``). Brute force is one pass over all rows
(every query against every chunk), kept in ``--truth`` for the next run. Reported per setting:
recall@10 of the shortlist re-scored exactly against brute force, which is the share of the
brute-force top 10 the shortlist holds (re-scored exactly, those rows outscore all others); the
approximate search's time per query (the re-scoring's own cost is measured by ``qvi bench
--scale``); and the approximate index's memory.

    .venv/bin/python scripts/ann_10m.py --cache /tmp/real-recall.npz --n 10000000 \
        --nprobe 16,24,32,40 --shortlist 16000,24000,32000,40000 --truth /tmp/truth-10m.npz --out ann-10m.json

About 25 minutes on 2 cores the first time (build 15, brute force 6), 17 with ``--truth`` kept;
peak memory about 4 GB (about 9 GB from 1.6 million rows, with the refining codes). Whole
queries as the store runs them, the rows read from disk (docs/ann-10m-refine.json):

    .venv/bin/python scripts/ann_10m.py --cache /tmp/real-recall.npz --keep 0,200,500 \
        --truth /tmp/truth-10m.npz --rows-file /big/disk/rows-10m.npy --index-dir /tmp/ann-10m --out ann-10m-refine.json

The rows file takes 41 GB and about 6 minutes to write; a second run with ``--index-dir`` loads
the saved index instead of building it.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
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


def brute_force_top10(rows: Generated, queries: np.ndarray) -> np.ndarray:
    """Each query's ten best rows by exact cosine, in one pass over all rows."""
    best = np.full((len(queries), 10), -np.inf, np.float32)
    best_rows = np.zeros((len(queries), 10), np.int64)
    for start, x in rows.chunks():
        scores = queries @ x.T
        both = np.concatenate([best, scores], axis=1)
        ids = np.concatenate([best_rows, np.broadcast_to(np.arange(start, start + len(x)), scores.shape)], axis=1)
        top = np.argpartition(-both, 10, axis=1)[:, :10]
        best, best_rows = np.take_along_axis(both, top, 1), np.take_along_axis(ids, top, 1)
    return best_rows


def whole_queries(rows: Generated, ann: IvfIndex, queries: np.ndarray, path: Path) -> dict:
    """Time whole queries as ``ReferenceIndex.search`` runs them for 10 results, the rows read
    from ``path`` (written first if missing) through a memory map advised as the store advises it."""
    import os

    from qvi_app.index.store import _gathered, _read_rows_alone, _scores

    if not path.exists():
        t = time.perf_counter()
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=rows.shape)
        for start, x in rows.chunks():
            out[start:start + len(x)] = x
        out.flush()
        del out
        print(f"wrote {path} in {time.perf_counter() - t:.0f} s", flush=True)
    embeddings = np.load(path, mmap_mode="r")
    _read_rows_alone(embeddings)
    fd = os.open(path, os.O_RDONLY)
    keep = ann.settings.kept(10)
    result = {"rows_file_gb": path.stat().st_size / 1e9, "keep": keep}
    try:
        # "disk": nothing of the file cached (the worst case); "repeated": the same queries again,
        # their rows now cached (the best case)
        for name, evict in (("disk", True), ("repeated", False)):
            parts = {"search_and_refine": [], "exact_scores": [], "total": []}
            for q in queries:
                if evict:       # no row of the file stays cached from the last query
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                t0 = time.perf_counter()
                found, _ = ann.search(q, max(keep, ann.shortlist), keep=keep)
                t1 = time.perf_counter()
                found = np.sort(found)
                scores = _gathered(embeddings, found, lambda m: _scores(m, q), parallel=ann.refines)
                np.argsort(-scores)[:10]
                t2 = time.perf_counter()
                for part, seconds in (("search_and_refine", t1 - t0), ("exact_scores", t2 - t1), ("total", t2 - t0)):
                    parts[part].append(seconds * 1e3)
            result[name] = {part: {"median_ms": float(np.median(v)), "p95_ms": float(np.percentile(v, 95))}
                            for part, v in parts.items()}
            print(name, json.dumps(result[name]), flush=True)
    finally:
        os.close(fd)
    return result


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",")]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, required=True, help="scripts/real_recall.py's embeddings (.npz)")
    ap.add_argument("--n", type=int, default=10_000_000, help="generated rows (default ten million)")
    ap.add_argument("--out", type=Path, default=Path("ann-10m.json"))
    ap.add_argument("--nprobe", type=_ints, default=None,
                    help="lists visited per query, comma-separated to compare several (default: AnnSettings')")
    ap.add_argument("--shortlist", type=_ints, default=None,
                    help="shortlist sizes, comma-separated (default: what a search at this size uses)")
    ap.add_argument("--dims-per-byte", type=int, default=AnnSettings().dims_per_byte,
                    help="PCA dimensions per product-quantiser byte (AnnSettings')")
    ap.add_argument("--truth", type=Path, default=None,
                    help="file keeping the brute-force top 10 (made if missing; it depends on --n and --cache only)")
    ap.add_argument("--keep", type=_ints, default=None,
                    help="rows the refining codes keep of each shortlist, comma-separated; 0: none "
                         "(default: what a search for 10 results keeps, AnnSettings.refine_keep)")
    ap.add_argument("--rows-file", type=Path, default=None,
                    help="write the rows there as .npy (if missing) and time whole queries: shortlist, "
                         "refining codes, exact scores of the rows kept, read from that file with the "
                         "page cache emptied of it before each query (the worst case) and not")
    ap.add_argument("--index-dir", type=Path, default=None,
                    help="folder keeping the approximate index (built and saved there if missing; it "
                         "depends on --n, --cache and --dims-per-byte only)")
    ap.add_argument("--real-queries", type=int, default=116,
                    help="how many of the cache's queries, at its end, are recorded imitations (real_recall.py: 116)")
    a = ap.parse_args(argv)
    data = np.load(a.cache)
    rows = Generated(data["rows"], a.n)
    queries = np.ascontiguousarray(data["queries"], np.float32)
    total = rows.shape[0]
    print(f"{total:,} rows ({a.n:,} generated), {len(queries)} queries", flush=True)

    settings = AnnSettings(threshold=0, dims_per_byte=a.dims_per_byte)
    saved = a.index_dir / IvfIndex.FILE if a.index_dir is not None else None
    if saved is not None and saved.exists():
        ann, build_s = IvfIndex.load(saved, settings), None
        print(f"approximate index loaded from {saved}; {ann.description}", flush=True)
    else:
        t = time.perf_counter()
        ann = IvfIndex.build(rows, settings)
        build_s = time.perf_counter() - t
        print(f"approximate index built in {build_s:.0f} s; {ann.description}", flush=True)
        if saved is not None:
            a.index_dir.mkdir(parents=True, exist_ok=True)
            ann.save(saved)

    if a.truth is not None and a.truth.exists():
        truth = np.load(a.truth)["top10"]
        brute_s = None
    else:
        t = time.perf_counter()
        truth = brute_force_top10(rows, queries)
        brute_s = time.perf_counter() - t
        if a.truth is not None:
            np.savez(a.truth, top10=truth)
    # Re-scoring a shortlist exactly puts every true top-10 row it holds into its top 10 (they
    # outscore all other rows), so recall@10 after re-scoring is the share of the true top 10
    # that the shortlist holds.
    n_real = min(a.real_queries, len(queries))
    trials = []
    for nprobe in a.nprobe or [settings.nprobe]:
        ann.settings = replace(settings, nprobe=nprobe)
        for k in a.shortlist or [ann.shortlist]:
            for keep in a.keep or [settings.refine_keep]:
                search_ms, recall = [], []
                for q, best in zip(queries, truth):
                    t = time.perf_counter()
                    found, _ = ann.search(q, k, keep=keep or None)
                    search_ms.append((time.perf_counter() - t) * 1e3)
                    recall.append(len(np.intersect1d(found, best)) / 10)
                trial = {"nprobe": nprobe, "shortlist": k, "refine_keep": keep, "recall_at_10": float(np.mean(recall)),
                         "recall_at_10_real_imitations": float(np.mean(recall[-n_real:])) if n_real else None,
                         "approximate_search_median_ms": float(np.median(search_ms)),
                         "approximate_search_p95_ms": float(np.percentile(search_ms, 95))}
                print(json.dumps(trial), flush=True)
                trials.append(trial)
    ann.settings = settings
    whole = whole_queries(rows, ann, queries, a.rows_file) if a.rows_file is not None else None
    result = {
        "rows": int(total), "generated": a.n, "real_rows": int(len(data["rows"])), "queries": int(len(queries)),
        "generator": ("Gaussian with the real rows' mean, first 256 principal directions and residual spread; "
                      "normalised"),
        "index": ann.description,
        "build_s": build_s, "brute_force_pass_s": brute_s,
        "trials": trials,
        "whole_query": whole,
        "ann_memory_mb": ann.memory_bytes() / 1e6,
    }
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
