"""Approximate nearest-neighbour search for large libraries: a compressed shortlist, then exact scores.

faiss ``PCA{p},IVF{lists},PQ{m}`` (inner product): vectors are rotated and reduced to ``p``
dimensions, bucketed into 4√N inverted lists, and stored as ``m``-byte product-quantised codes.
The index in memory is therefore about ``m`` + 8 bytes per sound (about 40 MB at 1M, 400 MB at
10M) instead of the float32 matrix (4 GB at 1M for 1024-d, 10 GB for the fused 2,599-d vectors).
It only *chooses* a shortlist; :class:`qvi_app.index.store.ReferenceIndex` scores the shortlist
exactly from the memory-mapped embeddings, so every score shown is the exact one and only which
sounds get scored is approximate (recall measured in docs/BENCHMARKS.md).

Before issue 14 this was IVF-Flat, which kept every vector unquantised in RAM: at 1M that was the
whole embedding matrix read at every ``qvi search`` call.

A category or length filter runs inside the search (a faiss ID selector, the last few cached), with
more lists probed for a small set, so every hit is one the filter keeps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

#: Filtered sets whose faiss selector is kept for the next search (a category, a length, or both).
SELECTORS_KEPT = 8


@dataclass(frozen=True)
class AnnSettings:
    #: Libraries with at least this many sounds get an approximate index next to the exact one.
    threshold: int = 100_000
    #: Number of inverted lists = lists_per_sqrt * sqrt(N).
    lists_per_sqrt: float = 4.0
    #: Lists visited per query (recall vs speed).
    nprobe: int = 32
    #: How many sounds the approximate index shortlists for exact scoring (at least 50 x top N).
    #: Recall@10 on noisy copies of the demo embeddings: 120k, 200 → 0.86, 1,000 → 0.99; 1M
    #: (1,650 near-copies of each sound), 1,000 → 0.83, 2,000 → 0.93, 4,000 → 0.98 for 4.4 ms
    #: (gathering 16 MB of rows from the memory map); probing 64 lists instead of 32 changed nothing.
    shortlist: int = 4000
    #: ... and at least this share of the library, up to ``shortlist_max``. On real embeddings
    #: (real-dev imitations against 3,286 / 6,572 / 13,144 embedded sounds and imitations) the
    #: shortlist that reaches recall@10 0.95 grows with the library: under 200 / about 250 /
    #: about 370 rows (600 at 13,144 before the codes were scored against the uncentred query),
    #: so a fixed 4,000 (0.4% of a million) is likely short of real libraries there; 1% is
    #: 10,000 rows at a million (40 MB gathered, a few ms more per query).
    #: The cap matters from 1.6M sounds up. At ten million (scripts/ann_10m.py, docs/ann-10m.json:
    #: rows generated like real embeddings, 12,657 lists, 32 probed = about 25,000 rows scanned)
    #: recall@10 was 0.842 with 16,000, 0.935 with 24,000, 0.974 with 32,000: the product codes
    #: rank the scanned rows too coarsely to cut them much further. Doubling the code (PQ64) only
    #: moved 16,000 to 0.914, and probing 16 lists capped recall at 0.960. Exact scores of 32,000
    #: rows cost 18-21 ms from a cached memory map (store.GATHER_BLOCK), seconds from a disk.
    shortlist_share: float = 0.01
    shortlist_max: int = 32_000
    #: Dimensions kept by the PCA rotation before quantising (at most the vectors' own).
    reduced_dim: int = 256
    #: Dimensions per product-quantiser byte (the code is reduced_dim / dims_per_byte bytes).
    dims_per_byte: int = 8
    #: A category filter uses the approximate index from this many candidates up (fewer are scored
    #: exactly: 20,000 1024-d rows are 80 MB, about 10 ms).
    filter_min: int = 20_000
    #: Training sample for the coarse quantiser, per list, and its k-means iterations. Training was
    #: half of a 1M build (30 of 47 s with 40 per list and faiss's 25 iterations); 20 per list and
    #: 10 iterations take 15 s, and recall@10 on real embeddings (13,144 rows, 720 queries,
    #: scripts/real_recall.py's) moved within its run-to-run spread: shortlist 200, 0.770 -> 0.767;
    #: 400, 0.928 -> 0.912 (two builds with the old settings differed by 0.028).
    train_per_list: int = 20
    kmeans_iterations: int = 10
    #: Vectors added per batch while building (bounds the memory of a build from a memory map).
    add_batch: int = 65_536
    #: Libraries with at least this many sounds also get refining codes (``IvfIndex.refine``):
    #: their shortlist (16,000 rows and more) is cut in RAM to ``refine_keep`` rows, at least
    #: 50 x the results asked for, before exact scoring reads rows from the disk. Their float rows
    #: (6.5 GB and more) are unlikely to stay in a desktop's page cache; below, they do, and the
    #: whole shortlist is scored exactly (10,000 rows at a million: 6-8 ms). The cut costs recall
    #: where the top 10 is a near-tie among many near-copies: on the synthetic million of
    #: ``qvi bench --scale`` (1,650 noisy copies of each demo sound, hubness penalties on), with
    #: the cut forced, recall@10 0.995 became 0.847 keeping 500 rows (0.742 before the penalties
    #: were subtracted in RAM too) and 0.992 keeping 2,000. On real embeddings (13,144 rows) and
    #: ten million generated like them it cost nothing (docs/SCALING.md).
    refine_threshold: int = 1_600_000
    refine_keep: int = 500
    seed: int = 0

    def kept(self, top_k: int) -> int:
        """Rows a search for ``top_k`` results keeps for exact scoring: 50 per result, at least
        ``refine_keep``; the whole shortlist is at least this long."""
        return max(50 * top_k, self.refine_keep)


def _faiss():
    import faiss

    return faiss


class IvfIndex:
    FILE = "ann.faiss"
    #: The refining codes (N x reduced_dim uint8) and their range per dimension (lowest, step).
    REFINE_FILE = "ann-refine.npy"
    RANGE_FILE = "ann-refine-range.npy"
    REFINE_BLOCK = 2048
    #: How many more lists a filtered search may visit (a category of 1/8 of the library or less).
    MAX_PROBE_FACTOR = 8

    def __init__(self, index, settings: AnnSettings, refine: np.ndarray | None = None,
                 refine_range: np.ndarray | None = None):
        self._index = index
        self._refine, self._refine_range = refine, refine_range
        self.settings = settings
        faiss = _faiss()
        self._ivf = faiss.extract_index_ivf(index)
        self._ivf.nprobe = settings.nprobe
        self._selectors: dict = {}
        # The PCA rotation without its centring, for queries (_search_uncentred).
        self._rotation = None
        if isinstance(index, faiss.IndexPreTransform):
            self._rotation, self._shift = _pca_parts(index)

    @classmethod
    def build(cls, embeddings: np.ndarray, settings: AnnSettings = AnnSettings()) -> "IvfIndex":
        faiss = _faiss()
        n, d = embeddings.shape
        nlist = max(1, min(int(settings.lists_per_sqrt * np.sqrt(n)), n // 39))  # faiss wants >= 39 points per list
        p = min(settings.reduced_dim, d - d % settings.dims_per_byte) or d
        m = max(1, p // settings.dims_per_byte)
        index = faiss.index_factory(d, f"PCA{p},IVF{nlist},PQ{m}", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(settings.seed)
        size = min(n, max(settings.train_per_list * nlist, 256 * 39))
        sample = np.ascontiguousarray(embeddings[np.sort(rng.choice(n, size=size, replace=False))], np.float32)
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.seed = settings.seed
        ivf.cp.niter = settings.kmeans_iterations
        ivf.cp.min_points_per_centroid = min(settings.train_per_list, 39)   # else faiss warns below 39
        # faiss also trains the codes for polysemous (Hamming) filtering by default, which qvi
        # never uses: it was two thirds of a build (300k sounds: training 34 s -> 11 s without).
        ivf.do_polysemous_training = False
        index.train(sample)
        pca = faiss.downcast_VectorTransform(index.chain.at(0))
        rotation, shift = _pca_parts(index)
        refine_range = _code_range(sample @ rotation)
        del sample
        # Rows are rotated once per batch, for the IVF-PQ codes (centred) and the refining codes
        # (uncentred) alike, instead of letting faiss rotate them again inside add().
        inner = faiss.downcast_index(index.index)
        refine = np.empty((n, p), np.uint8) if n >= settings.refine_threshold else None
        for start in range(0, n, settings.add_batch):
            rotated = pca.apply(np.ascontiguousarray(embeddings[start:start + settings.add_batch], np.float32))
            inner.add(rotated)
            if refine is not None:
                refine[start:start + len(rotated)] = _encode(rotated - shift, refine_range)
        index.ntotal = inner.ntotal
        return cls(index, settings, refine, refine_range if refine is not None else None)

    def save(self, path: Path) -> None:
        """The faiss index at ``path``; the refining codes and their range beside it."""
        _faiss().write_index(self._index, str(path))
        if self._refine is not None:
            np.save(path.parent / self.REFINE_FILE, self._refine)
            np.save(path.parent / self.RANGE_FILE, self._refine_range)

    @classmethod
    def load(cls, path: Path, settings: AnnSettings = AnnSettings()) -> "IvfIndex":
        """The index at ``path``; its refining codes memory-mapped (the page cache keeps them: 2.6 GB
        at ten million). An index of fewer than ``refine_threshold`` sounds, or written before
        qvi 0.7, has none, and its whole shortlist is scored exactly."""
        index = _faiss().read_index(str(path))
        refine = refine_range = None
        if (path.parent / cls.REFINE_FILE).exists():
            refine = np.load(path.parent / cls.REFINE_FILE, mmap_mode="r")
            refine_range = np.load(path.parent / cls.RANGE_FILE)
            if refine.dtype != np.uint8 or refine.shape != (index.ntotal, faiss_dim(index)) \
                    or refine_range.shape != (2, refine.shape[1]) or not np.isfinite(refine_range).all():
                raise ValueError("its refining codes do not fit its approximate index")
        return cls(index, settings, refine, refine_range)

    @property
    def refines(self) -> bool:
        """Whether this index has refining codes (libraries of ``refine_threshold`` sounds or more)."""
        return self._refine is not None

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def nlist(self) -> int:
        return int(self._ivf.nlist)

    @property
    def description(self) -> str:
        """The index's structure in faiss's factory words, e.g. ``PCA256,IVF4000,PQ32``."""
        return f"PCA{self._ivf.d},IVF{self._ivf.nlist},PQ{self._ivf.code_size}"

    @property
    def shortlist(self) -> int:
        """How many rows a search shortlists for exact scoring, for this library's size."""
        s = self.settings
        return max(s.shortlist, min(s.shortlist_max, int(s.shortlist_share * self.ntotal)))

    def search(self, query: np.ndarray, k: int, allowed_rows: np.ndarray | None = None, key=None,
               keep: int | None = None, offsets: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(rows, approximate scores) of about the ``k`` best rows, best first; only ``allowed_rows``
        if given (``key`` names that set, e.g. its category, so its selector is built once). With
        ``keep``, the ``k`` rows are then cut to the ``keep`` best by the refining codes
        (:meth:`refine`, less ``offsets`` if given), in their order."""
        faiss = _faiss()
        q = np.ascontiguousarray(query, dtype=np.float32).reshape(1, -1)
        nprobe = self.settings.nprobe
        selector = None
        if allowed_rows is not None:
            selector = self._selectors.pop(key, None) if key is not None else None
            if selector is None:
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(allowed_rows, dtype=np.int64))
            if key is not None:
                # the most recent last; a few kept: each holds its rows (a category crossed with a
                # length is another set, and a big library's selectors are tens of MB)
                self._selectors[key] = selector
                while len(self._selectors) > SELECTORS_KEPT:
                    self._selectors.pop(next(iter(self._selectors)))
            share = max(len(allowed_rows), 1) / max(self.ntotal, 1)
            nprobe = min(self._ivf.nlist, nprobe * min(self.MAX_PROBE_FACTOR, math.ceil(1 / share)))
        params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        if self._rotation is None:
            scores, rows = self._index.search(q, k, params=params)
        else:
            scores, rows = self._search_uncentred(q, k, params)
        found = rows[0] >= 0
        rows, scores = rows[0][found], scores[0][found]
        if keep is not None and len(rows) > keep and self._refine is not None:
            return self.refine(q[0], rows, keep, offsets)
        return rows, scores

    def refine(self, query: np.ndarray, rows: np.ndarray, keep: int, offsets: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """The ``keep`` best of ``rows`` (and their scores, best first) by the refining codes: each
        row's PCA rotation, uncentred, in one byte per dimension (N x 256 bytes, 2.6 GB at ten
        million, beside the 32-byte IVF-PQ codes that chose the shortlist). ``offsets`` (one per
        row of the library) are subtracted first: a ranking's per-sound hubness penalties, so the
        rows kept are the best by the score the exact stage will rank with.

        At ten million a shortlist holds 32,000 rows for recall@10 0.97 (``shortlist_max``), and
        scoring them exactly reads 32,000 rows of 4 KB: 18-21 ms from the page cache, seconds from
        a disk when the 41 GB of floats cannot stay cached. These codes score the shortlist in RAM
        much more finely than the product codes, so only ``keep`` rows are read from the disk."""
        lowest, step = self._refine_range
        rotated = np.ascontiguousarray(query, np.float32) @ self._rotation
        order = np.sort(rows)                                   # the codes in file order
        weights = torch.from_numpy(rotated * step)
        scores = np.empty(len(order), np.float32)
        # Block by block, so each block's float copy stays in the CPU's cache: 32,000 random rows of
        # ten million, 4.4 ms (the gather alone 4.3) against 7-16 ms converted all at once.
        with torch.inference_mode():
            for s in range(0, len(order), self.REFINE_BLOCK):
                codes = torch.from_numpy(self._refine[order[s:s + self.REFINE_BLOCK]])
                scores[s:s + self.REFINE_BLOCK] = torch.mv(codes.float(), weights).numpy()
        scores += float(lowest @ rotated)
        if offsets is not None:
            scores -= offsets[order]
        best = np.argpartition(-scores, keep - 1)[:keep]
        best = best[np.argsort(-scores[best], kind="stable")]
        return order[best], scores[best]

    def _search_uncentred(self, q: np.ndarray, k: int, params) -> tuple[np.ndarray, np.ndarray]:
        """Lists chosen with the query centred, as rows were assigned to them; codes scored with
        the query rotated but *not* centred.

        The codes hold rows centred on the library's mean m (the PCA step subtracts it). Against a
        centred query, (x - m).(q - m) ranks rows by x.q - m.x, a bias towards rows far from the
        mean whatever the query; against the uncentred one, (x - m).q = x.q - m.q ranks them by
        x.q, what the search wants. On real embeddings (13,144 rows, scripts/real_recall.py) a
        shortlist of 200 held 74% of the true top 10 with the query centred, 86% uncentred; 400:
        90 -> 96%. Choosing the lists with the uncentred query too halved recall."""
        faiss, ivf = _faiss(), self._ivf
        rotated = np.ascontiguousarray(q @ self._rotation)
        _, lists = ivf.quantizer.search(rotated + self._shift, params.nprobe)
        found = lists[0] >= 0
        base = np.full(lists.shape, -np.inf, np.float32)      # each list's part of the score: centre.q
        base[0, found] = ivf.quantizer.reconstruct_batch(lists[0][found]) @ rotated[0]
        scores, rows = np.empty((1, k), np.float32), np.empty((1, k), np.int64)
        lists = np.ascontiguousarray(lists, np.int64)
        # the C++ call: faiss's Python wrapper of it accepts no search parameters (the selector)
        ivf.search_preassigned_c(1, faiss.swig_ptr(rotated), k, faiss.swig_ptr(lists), faiss.swig_ptr(base),
                                 faiss.swig_ptr(scores), faiss.swig_ptr(rows), False, params)
        return scores, rows

    def memory_bytes(self) -> int:
        """Codes + ids + coarse centroids + PQ codebooks + the PCA matrix + the refining codes, as
        held in memory (the refining codes in the page cache)."""
        ivf = self._ivf
        p = ivf.d
        refine = 0 if self._refine is None else self._refine.nbytes
        return self.ntotal * (ivf.code_size + 8) + ivf.nlist * p * 4 + 256 * p * 4 + self._index.d * p * 4 + refine


def _pca_parts(index) -> tuple[np.ndarray, np.ndarray]:
    """A PCA-first index's rotation (d, p) without its centring, and its shift (p,): the rotated
    library mean, negated."""
    faiss = _faiss()
    pca = faiss.downcast_VectorTransform(index.chain.at(0))
    rotation = faiss.vector_to_array(pca.A).reshape(pca.d_out, pca.d_in).T
    return np.ascontiguousarray(rotation, dtype=np.float32), faiss.vector_to_array(pca.b).astype(np.float32)


def faiss_dim(index) -> int:
    """The dimension an index's codes hold (after its PCA rotation, if any)."""
    return int(_faiss().extract_index_ivf(index).d)


def _code_range(sample: np.ndarray) -> np.ndarray:
    """(2, dims): lowest value and step of one byte per dimension, covering the sample's range and
    a tenth more each side (rows beyond that are clipped)."""
    low, high = sample.min(axis=0), sample.max(axis=0)
    margin = 0.1 * (high - low) + 1e-6
    return np.stack([low - margin, (high - low + 2 * margin) / 255]).astype(np.float32)


def _encode(rows: np.ndarray, code_range: np.ndarray) -> np.ndarray:
    lowest, step = code_range
    return np.clip(np.rint((rows - lowest) / step), 0, 255).astype(np.uint8)


__all__ = ["AnnSettings", "IvfIndex"]
