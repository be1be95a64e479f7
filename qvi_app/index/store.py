"""The reference index on disk: embeddings (NumPy) + metadata (SQLite), swapped in atomically.

Layout of an index folder::

    CURRENT               name of the live generation, replaced with os.replace
    gen-<time>-<pid>/     embeddings.npy (N, D) float32, unit rows (a fused encoder: one unit
                          block per part); meta.sqlite (read lazily: items.py); categories.npy
                          (N,) int32 codes of the sorted names in meta; penalties.npy (N, blocks) for a ranking
                          with a hubness correction; ann.faiss (only for libraries of
                          AnnSettings.threshold sounds or more)

A new generation is written completely and fsynced before CURRENT points to it, so a
crash or kill at any moment leaves the previous index intact and usable.
"""

from __future__ import annotations

import errno
import hashlib
import json
import mmap
import os
import re
import shutil
import sqlite3
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import torch

from qvi_app import __version__
from qvi_app.audio.load import CUT_ABOVE_FLOOR_DB
from qvi_app.audio.tags import READER
from qvi_app.errors import LibraryIndexError, StaleIndexError, printable
from qvi_app.index.ann import AnnSettings, IvfIndex
from qvi_app.index.filters import LENGTH_PRESETS, NO_FILTERS, Filters, Length, name_words
from qvi_app.index.items import IndexItem, ItemTable, SkippedFile, category_codes, connect_readonly
from qvi_app.index.scan import path_to_db
from qvi_app.ranking import RankingSettings, fused_scores, hub_penalty

#: Above this many sounds, hubness penalties are measured against a seeded sample of the library
#: (each sound's k nearest among 4,096), keeping a million-sound build to seconds.
PENALTY_BANK_MAX = 4096
#: From this many sounds, penalties against a model's query bank go through the bank's first
#: PENALTY_RANK principal directions (ranking.score.low_rank): at a million sounds the exact
#: penalties would take 55 s on 2 cores (1.1 s per 20,000 measured; 4.3 T multiply-adds), more than
#: the rest of the build; through 128 directions, 6x fewer operations.
PENALTY_EXACT_MAX = 100_000
PENALTY_RANK = 128
#: Name filters whose rows are kept per open index. Finding them scans the item table (one
#: folded path per sound); re-ranking under the same words then costs nothing.
NAMED_KEPT = 8

FORMAT_VERSION = 1
_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE items (row INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, category TEXT NOT NULL,
                    duration REAL NOT NULL, sample_rate INTEGER NOT NULL, size INTEGER NOT NULL,
                    mtime REAL NOT NULL, content_hash TEXT NOT NULL);
CREATE TABLE skipped (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL,
                      reason TEXT NOT NULL);
CREATE TABLE descriptions (row INTEGER PRIMARY KEY, text TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SearchHit:
    rank: int             # 1-based
    path: Path            # absolute
    relpath: str
    category: str
    score: float          # cosine similarity; a fused ranking's weighted z-score sum
    duration: float
    row: int = -1         # the item's row in its index (its stored embedding)
    rating: int = 0       # +1 / -1 when the user rated it for this query (the list keeps it pinned)
    description: str = ""  # the file's own words about itself (audio.tags), as indexed

    def to_dict(self) -> dict:
        out = {"rank": self.rank, "path": str(self.path), "category": self.category,
               "score": round(self.score, 6) if np.isfinite(self.score) else None,
               "duration": round(self.duration, 3)}
        if self.rating:
            out["rating"] = self.rating
        if self.description:
            out["description"] = self.description
        return out


@dataclass(frozen=True)
class Facets:
    """Counts of sounds by category (sorted by name) and by the window's lengths, each among the
    sounds the other filters keep (:meth:`ReferenceIndex.facets`)."""

    categories: dict[str, int]
    lengths: dict[Length, int]


class ReferenceIndex:
    """A loaded index: memory-mapped embeddings plus per-item metadata."""

    def __init__(self, index_dir: Path, gen_dir: Path, meta: dict, items: ItemTable, embeddings: np.ndarray,
                 category_names: list[str], category_rows: np.ndarray, ann: IvfIndex | None = None,
                 penalties: np.ndarray | None = None):
        self.index_dir = index_dir
        #: How scores are made: one encoder's cosine, or fused blocks (meta written by a fused encoder).
        self.ranking = RankingSettings.from_dict(json.loads(meta["ranking"])) if "ranking" in meta else None
        self.blocks = [tuple(b) for b in json.loads(meta["blocks"])] if "blocks" in meta else None
        self.penalties = penalties
        self.ann = ann
        self.gen_dir = gen_dir
        self.meta = meta
        #: The items, read from SQLite row by row as they are asked for (a sequence of IndexItem).
        self.items = items
        self.embeddings = embeddings
        self.library_root = _resolve_root(index_dir, meta)
        #: How far over its noise floor each sound was cut (audio.CUT_ABOVE_FLOOR_DB when it was
        #: made; an index from before 0.12 does not say: 10 dB). Queries are cut alike.
        self.cut_above_floor_db = float(meta.get("cut_above_floor_db", 10.0))
        #: Made by an older qvi that cut its sounds otherwise: it searches as it did; an update
        #: embeds it again (one cut per index).
        self.cut_outdated = self.cut_above_floor_db != CUT_ABOVE_FLOOR_DB
        self._category_names = list(category_names)
        self._category_codes = category_rows
        self._skipped: list[SkippedFile] | None = None
        self._named: dict[tuple[str, ...], np.ndarray] = {}      # name filter words -> rows (_named_rows)
        self._cache_lock = threading.Lock()                     # the name answers and the lengths below
        self._durations: np.ndarray | None = None                # every row's seconds, read at the first length filter
        #: What the exact stage subtracts from a row's cosine (its weighted hubness penalty), for
        #: the approximate index's refining codes to subtract too. Only a one-encoder ranking
        #: scores by cosine less a penalty; a fused one z-scores per query (none then).
        self._refine_offsets = None
        if ann is not None and ann.refines and self.ranking is not None and len(self.ranking.encoders) == 1 \
                and self.ranking.hub_bank != "none" and penalties is not None and penalties.ndim == 2 \
                and len(penalties) == len(embeddings):
            self._refine_offsets = (self.ranking.hub_weight * penalties[:, 0]).astype(np.float32)

    @property
    def skipped(self) -> list[SkippedFile]:
        if self._skipped is None:
            self._skipped = self.items.skipped()
        return self._skipped

    # -- loading -------------------------------------------------------------------------
    @classmethod
    def open(cls, index_dir, encoder_id: str | None = None) -> "ReferenceIndex":
        """Load the live generation; with ``encoder_id``, refuse an index built by another encoder."""
        index_dir = Path(index_dir)
        con = None
        try:
            gen, con, meta, count = _live_meta(index_dir)
            items = ItemTable(con, count, str(index_dir), reader=_reader(meta.get("descriptions")))
            embeddings = np.load(gen / "embeddings.npy", mmap_mode="r")
            penalties = np.load(gen / "penalties.npy") if (gen / "penalties.npy").exists() else None
            dim, created = int(meta["dim"]), float(meta["created"])
            if embeddings.dtype != np.float32 or embeddings.ndim != 2 or not np.isfinite(created):
                raise ValueError(f"embeddings are {embeddings.dtype} {embeddings.ndim}-d, expected float32 2-d")
            if (gen / "categories.npy").exists():
                names, codes = json.loads(meta["categories"]), np.load(gen / "categories.npy")
                if codes.dtype != np.int32 or codes.shape != (count,) or not all(isinstance(n, str) for n in names) \
                        or (count and not 0 <= codes.min() <= codes.max() < len(names)):
                    raise ValueError("its category column does not fit its items")
            else:                                # written by qvi 0.2.0: read the column once
                names, codes = items.category_column()
            ann = None
            if (gen / IvfIndex.FILE).exists():
                ann = IvfIndex.load(gen / IvfIndex.FILE, AnnSettings(
                    threshold=int(meta["ann_threshold"]), nprobe=int(meta["ann_nprobe"]),
                    filter_min=int(meta.get("ann_filter_min", AnnSettings.filter_min))))
                _read_rows_alone(embeddings)
        except (sqlite3.Error, OSError, ValueError, RuntimeError, KeyError, TypeError, EOFError) as exc:
            if con is not None:
                con.close()
            raise LibraryIndexError(f"index at {printable(str(index_dir))} is damaged ({exc}); rebuild it with qvi index") from None
        if int(meta.get("format_version", -1)) != FORMAT_VERSION:
            raise StaleIndexError(f"index at {index_dir} has format {meta.get('format_version')}, this qvi "
                                  f"reads format {FORMAT_VERSION}; rebuild it with qvi index")
        if embeddings.shape != (len(items), dim):
            raise LibraryIndexError(f"index at {index_dir} is inconsistent: {embeddings.shape} embeddings "
                                    f"for {len(items)} items; rebuild it with qvi index")
        if ann is not None and ann.ntotal != len(items):
            raise LibraryIndexError(f"index at {index_dir} is inconsistent: its approximate index holds "
                                    f"{ann.ntotal} of {len(items)} items; rebuild it with qvi index")
        try:
            index = cls(index_dir, gen, meta, items, embeddings, names, codes, ann, penalties)
        except (ValueError, TypeError, KeyError) as exc:             # a damaged ranking or block layout
            raise LibraryIndexError(f"index at {index_dir} is damaged ({exc}); rebuild it with qvi index") from None
        if index.ranking is not None and index.ranking.hub_bank != "none" and (
                penalties is None or penalties.shape != (len(items), len(index.blocks))):
            raise LibraryIndexError(f"index at {index_dir} is inconsistent: its hubness penalties are missing or "
                                    "do not fit; rebuild it with qvi index")
        index.check_sample()
        if encoder_id is not None:
            index.require_encoder(encoder_id)
        return index

    def require_encoder(self, encoder_id: str) -> None:
        """Refuse (StaleIndexError, with the command that rebuilds it) an index built by another encoder."""
        if self.meta["encoder_id"] != encoder_id:
            raise StaleIndexError(
                f"index at {self.index_dir} was built by encoder {self.meta['encoder_id']}, but the current encoder "
                f"is {encoder_id}; rebuild it: qvi index {self.library_root} --index {self.index_dir} "
                f"--encoder {encoder_id.split('/')[0]}")

    # -- queries ---------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.items)

    @property
    def encoder_id(self) -> str:
        return self.meta["encoder_id"]

    def category_codes(self, rows) -> np.ndarray:
        """The category code (an index into the sorted category names) of each of ``rows``."""
        return self._category_codes[np.asarray(rows, dtype=np.int64)]

    def categories(self) -> dict[str, int]:
        """Category name → number of items, sorted by name."""
        counts = np.bincount(self._category_codes, minlength=len(self._category_names))
        return {name: int(n) for name, n in zip(self._category_names, counts)}

    def facets(self, filters: Filters = NO_FILTERS) -> Facets:
        """How many sounds each category, and each of the window's lengths, holds among those the
        *other* filters keep (faceted counts): with `door` typed, the category box says where the
        doors are; under 1 s picked, how many of each category are that short. With no filters,
        the library's own counts. Blocking the first time (every sound's length is read, about
        half a second at a million sounds; a name filter's rows are kept from the last few)."""
        rows = self.kept_rows(filters.but(category=None))
        codes = self._category_codes if rows is None else self._category_codes[rows]
        per = np.bincount(codes, minlength=len(self._category_names))
        rows = self.kept_rows(filters.but(length=None))
        seconds = self.durations() if rows is None else self.durations()[rows]
        return Facets({name: int(n) for name, n in zip(self._category_names, per)},
                      {p: int(np.count_nonzero(p.holds(seconds))) for p in LENGTH_PRESETS})

    def _known_category(self, category: str) -> str:
        """``category`` as the index names it; a spelling that differs only in case ('Birds') is
        taken when exactly one category matches it."""
        if category in self._category_names:
            return category
        folded = [c for c in self._category_names if c.casefold() == category.casefold()]
        if len(folded) == 1:
            return folded[0]
        raise LibraryIndexError(f"unknown category {category!r}; known: {', '.join(self._category_names)}")

    def search(self, query: np.ndarray, filters: Filters = NO_FILTERS, top_k: int = 10) -> list[SearchHit]:
        """Rank items by the index's ranking (cosine similarity to the unit vector ``query``, or a
        fused encoder's blocks fused); ties keep index order. Only the sounds ``filters`` keep.

        Exact (brute force) unless the index has an approximate index (libraries of
        ``AnnSettings.threshold`` sounds or more) and the candidates are all items or at least
        ``filter_min`` of them; then the approximate index shortlists and the shortlist is scored
        exactly.
        """
        query = np.asarray(query, dtype=np.float32)
        if query.shape != (self.embeddings.shape[1],):
            raise ValueError(f"query has shape {query.shape}, index holds {self.embeddings.shape[1]}-d vectors")
        rows = self.kept_rows(filters)
        # a category's and a length's selector is kept for the next query; a name's is not (every
        # word typed is another set)
        key = (filters.category and self._known_category(filters.category), filters.length) \
            if filters.name is None and rows is not None else None
        if self.ann is not None and (rows is None or len(rows) >= self.ann.settings.filter_min):
            # The approximate index only shortlists (compressed codes, then finer in-RAM codes);
            # the shortlist is then scored exactly from the embeddings, as the exact path would.
            keep = self.ann.settings.kept(top_k)
            found, _ = self.ann.search(query, max(keep, self.ann.shortlist), rows, key=key, keep=keep,
                                       offsets=self._refine_offsets)
            found = np.sort(found)
            scores = self.scores(query, found) if len(found) else np.zeros(0, np.float32)
            order = np.lexsort((found, -scores))[:top_k]
            return self._hits(found[order], scores[order])
        scores = self.scores(query, rows)
        if rows is None:
            rows = np.arange(len(scores))
        k = min(top_k, len(rows))
        if k <= 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        best = best[np.lexsort((rows[best], -scores[best]))]
        return self._hits(rows[best], scores[best])

    def listing(self, filters: Filters, top_k: int, start: int = 0) -> tuple[list[SearchHit], int]:
        """The sounds ``filters`` keep, without a query, in the index's order (by path, as
        indexing writes them): ``top_k`` of them from the ``start``-th on (ranked from
        ``start + 1``, their score NaN), and how many the filters keep."""
        rows = self.kept_rows(filters)
        total = len(self) if rows is None else len(rows)
        end = min(start + top_k, total)
        rows = np.arange(start, end, dtype=np.int64) if rows is None else rows[start:end]
        return self._hits(rows, np.full(len(rows), np.nan, np.float32), start + 1), total

    def kept_rows(self, filters: Filters) -> np.ndarray | None:
        """The rows ``filters`` keep (sorted int64); None when they keep every row."""
        rows = None
        if filters.category is not None:
            rows = np.flatnonzero(self._category_codes == self._category_code(filters.category))
        if filters.length is not None:
            lasting = np.flatnonzero(filters.length.holds(self.durations()))
            rows = lasting if rows is None else np.intersect1d(rows, lasting, assume_unique=True)
        named = self.named_rows(filters.name)
        if named is not None:
            rows = named if rows is None else np.intersect1d(rows, named, assume_unique=True)
        return rows

    def keeps(self, filters: Filters, rows) -> np.ndarray:
        """Whether ``filters`` keep each of ``rows`` (booleans): for a few rows (the rated sounds),
        without finding every row they keep as :meth:`kept_rows` does."""
        rows = np.asarray(rows, dtype=np.int64)
        ok = np.ones(len(rows), dtype=bool)
        if filters.category is not None:
            ok &= self._category_codes[rows] == self._category_code(filters.category)
        if filters.length is not None:
            ok &= filters.length.holds(self.durations()[rows])
        named = self.named_rows(filters.name)
        if named is not None:
            ok &= np.isin(rows, named)
        return ok

    def _category_code(self, category: str) -> int:
        return self._category_names.index(self._known_category(category))

    def durations(self) -> np.ndarray:
        """Every row's length in seconds, read from the item table once (blocking at the first
        call: about half a second at a million sounds)."""
        with self._cache_lock:
            if self._durations is None:
                self._durations = self.items.duration_column()
            return self._durations

    def named_rows(self, name: str | None) -> np.ndarray | None:
        """The rows a name filter keeps (sorted); None for a blank one, which keeps every row."""
        words = name_words(name)
        return self._named_rows(words) if words else None

    def _named_rows(self, words: tuple[str, ...]) -> np.ndarray:
        """:meth:`ItemTable.rows_named`, the last few answers kept: re-ranking the same filter
        (another category, a longer list, a rating) does not scan the table again."""
        with self._cache_lock:
            if words in self._named:
                self._named[words] = self._named.pop(words)          # most recent last
                return self._named[words]
        rows = self.items.rows_named(words)
        with self._cache_lock:
            self._named[words] = rows
            while len(self._named) > NAMED_KEPT:
                self._named.pop(next(iter(self._named)))
        return rows

    def scores(self, query: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
        """Scores of ``rows`` (all when None) for a query vector, as the index's ranking makes them.

        Cosines of unit vectors lie in [-1, 1]: anything else (flipped bytes, NaN rows) is
        reported as a damaged index rather than ranked or printed."""
        # The few rows the refining codes keep, of a library too large for the page cache: read in
        # parallel. Cached rows are read faster by one thread (10,000 of a cached million: 6.7 ms,
        # 10.5 ms by 8 threads), so a library without refining codes reads them so.
        scattered = rows is not None and self.ann is not None and self.ann.refines
        if self.ranking is None:
            return self._checked(_gathered(self.embeddings, rows, lambda m: _scores(m, query), scattered))
        per_block = self._checked(_gathered(self.embeddings, rows, lambda m: _block_scores(m, query, self.blocks),
                                            scattered))
        names = [name for name, _, _ in self.blocks]
        penalties = None
        if self.penalties is not None:
            pen = self.penalties if rows is None else self.penalties[rows]
            penalties = {name: pen[:, j] for j, name in enumerate(names)}
        return fused_scores({name: per_block[:, j] for j, name in enumerate(names)}, self.ranking, penalties)

    def scores_of(self, vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Scores of embeddings that are not in the index (the windows of one sound, see
        :mod:`qvi_app.ranking.where`), ranked as the index ranks its own rows but without their
        hubness penalties, which are a sound's, not a window's."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if self.ranking is None:
            return self._checked(_scores(vectors, query))
        per_block = self._checked(_block_scores(vectors, query, self.blocks))
        return fused_scores({name: per_block[:, j] for j, (name, _, _) in enumerate(self.blocks)}, self.ranking)

    def _checked(self, cosines: np.ndarray) -> np.ndarray:
        if not (np.isfinite(cosines).all() and np.abs(cosines).max(initial=0) <= 1.01):
            raise LibraryIndexError(self._damage("similarities out of range (its embeddings are corrupt)"))
        return cosines

    def _damage(self, what: str) -> str:
        return f"index at {printable(str(self.index_dir))} is damaged: {what}; rebuild it with: {self.update_command}"

    @property
    def update_command(self) -> str:
        """The command that brings this index up to date with its folder, by the same encoder
        (without --encoder an index of another encoder would be rebuilt by the default one)."""
        return (f"qvi index {printable(str(self.library_root))} --index {printable(str(self.index_dir))} "
                f"--encoder {self.meta['encoder_name']}")

    @property
    def has_checksum(self) -> bool:
        return "embeddings_sha256" in self.meta

    def check_sample(self, n: int = 256) -> None:
        """Cheap check at open: up to ``n`` rows spread over the file are finite unit blocks."""
        if not len(self):
            return
        rows = np.unique(np.linspace(0, len(self) - 1, min(n, len(self))).astype(int))
        sample = np.asarray(self.embeddings[rows], np.float64)
        blocks = self.blocks or [("", 0, sample.shape[1])]
        norms = np.stack([np.linalg.norm(sample[:, a:b], axis=1) for _, a, b in blocks])
        if not (np.isfinite(sample).all() and np.allclose(norms, 1.0, atol=1e-3)):
            raise LibraryIndexError(self._damage("its embeddings are not unit vectors"))

    def verify(self) -> str | None:
        """Compare the embeddings file with the checksum written with it; None when intact (or
        built before qvi kept checksums: see :attr:`has_checksum`), else what is wrong. Reads
        the whole file (run it in the background: 1M x 1024 is 4 GB)."""
        want = self.meta.get("embeddings_sha256")
        if want is None:
            return None
        try:
            got = file_sha256(self.gen_dir / "embeddings.npy")
        except OSError as exc:
            return self._damage(f"its embeddings cannot be read ({exc.strerror or exc})")
        return None if got == want else self._damage("its embeddings do not match their checksum")

    def _hits(self, rows, scores, first_rank: int = 1) -> list[SearchHit]:
        """Ranked hits for ``rows`` (best first) with their ``scores``: one metadata query for all."""
        items, told = self.items.rows(rows), self.items.descriptions(rows)
        return [SearchHit(rank, self.library_root / it.path, it.path, it.category, float(score), it.duration, int(row),
                          description=told.get(int(row), ""))
                for rank, (it, row, score) in enumerate(zip(items, rows, scores), first_rank)]

    def hit(self, rank: int, row: int, score: float) -> SearchHit:
        """The search result for ``row`` at ``rank`` with ``score`` (for rankings made outside :meth:`search`)."""
        it = self.items[row]
        return SearchHit(rank, self.library_root / it.path, it.path, it.category, score, it.duration, row,
                         description=self.items.descriptions([row]).get(row, ""))

    def row_of(self, path) -> int:
        """The row of a sound given as printed by a search (absolute path) or relative to the library."""
        p = Path(path)
        rel = p.as_posix()
        row = None if p.is_absolute() else self.items.row_of(rel)
        if row is None and not p.is_absolute() and p.exists():
            p = p.resolve()                      # typed relative to the current folder
        if row is None and p.is_absolute():
            try:
                row = self.items.row_of(p.relative_to(self.library_root).as_posix())
            except ValueError:
                row = None
        if row is not None:
            return row
        raise LibraryIndexError(f"{printable(str(path))} is not in the library at {printable(str(self.library_root))} "
                                "(give a path as qvi search prints it)")

    def vector(self, row: int) -> np.ndarray:
        """The stored embedding of ``row``, a copy (float32)."""
        return np.array(self.embeddings[row], np.float32)


def _read_rows_alone(embeddings: np.ndarray) -> None:
    """Tell the kernel that a large library's embeddings are read a few scattered rows at a time.

    By default a page fault in a memory map reads ahead (128 KB or more) around the row asked
    for; a 4 KB row then costs a large read. Ten million 1024-d rows (41 GB) do not stay in the
    page cache of a 24 GB machine. From an 8 GB file evicted from the page cache, 50 random rows
    took 270-355 ms and 500 took 1.5-1.8 s; with MADV_RANDOM, 3 and 21-26 ms (scripts/ann_10m.py
    --rows-file times whole queries). Only large libraries have an approximate index, and only
    their searches read scattered rows: a small library's brute force reads the file in order."""
    mapped = getattr(embeddings, "_mmap", None)
    if mapped is not None and hasattr(mapped, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        mapped.madvise(mmap.MADV_RANDOM)


#: Rows gathered from the memory map per block when scoring a shortlist. Gathering all of them at
#: once copied the whole shortlist through main memory before reading it again; blocks of 4 MB stay
#: in the CPU's cache. Random rows of a cached 1M library (1024-d), two runs: 32,000 rows 34-39 ms
#: at once, 18-21 ms in blocks of 1,024; 16,000 rows 17-22 -> 10-13 ms.
GATHER_BLOCK = 1024


def _gathered(embeddings: np.ndarray, rows: np.ndarray | None, score, parallel: bool = False) -> np.ndarray:
    """``score(embeddings[rows])`` (all rows when None), gathering ``rows`` block by block; with
    ``parallel``, each block's rows are read by :data:`READERS` threads."""
    if rows is None:
        return score(embeddings)
    take = partial(_read_in_parallel, embeddings) if parallel else embeddings.__getitem__
    if len(rows) <= GATHER_BLOCK:
        return score(take(rows))
    return np.concatenate([score(take(rows[s:s + GATHER_BLOCK])) for s in range(0, len(rows), GATHER_BLOCK)])


#: Threads reading the rows a library's refining codes keep. A disk answers several reads at a
#: time; one thread waits for each page in turn. The 500 rows kept of ten million (a 41 GB file
#: evicted from the page cache): 41 ms median by one thread, 16-18 ms by 8 (docs/SCALING.md).
READERS = 8


@lru_cache(maxsize=1)
def _readers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(READERS, thread_name_prefix="qvi-rows")


def _read_in_parallel(embeddings: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``embeddings[rows]``, the rows split among :data:`READERS` threads (NumPy copies, and the
    kernel reads the pages, without holding the GIL)."""
    if len(rows) < 2 * READERS:
        return embeddings[rows]
    out = np.empty((len(rows), embeddings.shape[1]), embeddings.dtype)

    def read(part):
        out[part] = embeddings[rows[part]]

    list(_readers().map(read, np.array_split(np.arange(len(rows)), READERS)))
    return out


def _scores(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``matrix @ query`` on torch's thread pool, not NumPy's BLAS.

    OpenBLAS's worker threads keep spinning for about 0.1 s after a call; on 2 cores they took
    the CPU from the encoder's next pass, which then ran 3x slower (113 vs 36 ms for a 5 s
    query, measured). The encoder and the ranking now share one pool.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # read-only memory map (or a row of it): torch only reads it
        m = torch.from_numpy(np.asarray(matrix))
        q = torch.from_numpy(np.ascontiguousarray(query))
    with torch.inference_mode():
        return torch.mv(m, q).numpy()


def _block_scores(matrix: np.ndarray, query: np.ndarray, blocks) -> np.ndarray:
    """(N, blocks) cosines of each block of ``query`` with the same block of every row: one
    matrix product with a (D, blocks) matrix holding each block's part of the query."""
    q = np.zeros((len(query), len(blocks)), np.float32)
    for j, (_, a, b) in enumerate(blocks):
        q[a:b, j] = query[a:b]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # read-only memory map: torch only reads it
        m = torch.from_numpy(np.asarray(matrix))
    with torch.inference_mode():
        return torch.mm(m, torch.from_numpy(q)).numpy()


def library_penalties(embeddings: np.ndarray, blocks, ranking: RankingSettings, seed: int = 0,
                      query_banks: dict[str, np.ndarray] | None = None,
                      known: np.ndarray | None = None) -> np.ndarray:
    """Each sound's hubness penalty per block (N, blocks): mean cosine to its ``hub_k`` nearest rows
    of the bank the ranking names: the other sounds of the library (a seeded sample of
    :data:`PENALTY_BANK_MAX` above that size), or the model's bank of simulated imitations.

    ``known``: penalties already measured, (N, blocks) with NaN rows where none is. Against a query
    bank a sound's penalty depends on that sound and the model alone, so only the NaN rows are
    computed (an update of a big library pays for its new sounds only); against the library every
    penalty changes with the library, and ``known`` is ignored."""
    n = len(embeddings)
    out = np.zeros((n, len(blocks)), np.float32)
    if ranking.hub_bank == "queries":
        todo = np.arange(n) if known is None else np.flatnonzero(np.isnan(known).any(axis=1))
        if known is not None:
            out[:] = known                       # the NaN rows are all computed below
        if len(todo) == 0:
            return out
        for j, (name, a, b) in enumerate(blocks):
            bank = (query_banks or {}).get(name)
            if bank is None or bank.shape[1] != b - a:
                raise ValueError(f"the ranking corrects hubness against a query bank, and the {name!r} "
                                 "model carries none of its size")
            rows = embeddings[:, a:b] if len(todo) == n else embeddings[todo, a:b]
            # exact or low-rank by the library's size, not the new rows', so all rows are alike
            out[todo, j] = hub_penalty(np.asarray(rows, np.float32), bank, ranking.hub_k,
                                       rank=PENALTY_RANK if n >= PENALTY_EXACT_MAX else None)
        return out
    bank_rows = np.arange(n) if n <= PENALTY_BANK_MAX else \
        np.sort(np.random.default_rng(seed).choice(n, PENALTY_BANK_MAX, replace=False))
    for j, (_, a, b) in enumerate(blocks):
        block = np.asarray(embeddings[:, a:b], np.float32)
        out[:, j] = hub_penalty(block, block[bank_rows], ranking.hub_k, bank_rows=bank_rows)
    return out


_GEN_NAME = re.compile(r"^gen-[0-9A-Za-z-]+$")


def _live_meta(index_dir: Path) -> tuple[Path, sqlite3.Connection, dict, int]:
    """An index's live generation, its metadata database (open, read-only: the caller closes it),
    its meta table and its number of items. Raises sqlite3.Error for a damaged database."""
    gen = current_generation(index_dir)
    if gen is None:
        raise LibraryIndexError(f"no index at {index_dir} (build one with: qvi index LIBRARY --index {index_dir})")
    con = connect_readonly(gen / "meta.sqlite")
    try:
        meta = dict(con.execute("SELECT key, value FROM meta"))
        count = int(con.execute("SELECT COUNT(*) FROM items").fetchone()[0])
    except BaseException:
        con.close()
        raise
    return gen, con, meta, count


def peek(index_dir) -> tuple[Path, int]:
    """(library folder, number of sounds) of an index, from its metadata alone: nothing else is
    loaded, so listing many indexes costs a small SQLite read each."""
    try:
        _, con, meta, count = _live_meta(Path(index_dir))
    except sqlite3.Error as exc:
        raise LibraryIndexError(f"index at {printable(str(index_dir))} is damaged ({exc})") from None
    try:
        return _resolve_root(Path(index_dir), meta), count
    except KeyError as exc:
        raise LibraryIndexError(f"index at {printable(str(index_dir))} is damaged (no {exc} in its metadata)") from None
    finally:
        con.close()


def current_generation(index_dir: Path) -> Path | None:
    """The live generation, a folder directly inside ``index_dir``; None when there is none.
    ``CURRENT`` may only name such a folder: a name with a path in it is refused as damage."""
    try:
        name = (Path(index_dir) / "CURRENT").read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if not _GEN_NAME.match(name):
        raise LibraryIndexError(f"index at {printable(str(index_dir))} is damaged: CURRENT names "
                                f"{printable(name[:80])!r}, not a generation of this index; rebuild it with qvi index")
    gen = Path(index_dir) / name
    return gen if gen.is_dir() else None


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_index(index_dir, *, encoder: dict, library_root: Path, items: list[IndexItem],
                embeddings: np.ndarray, skipped: list[SkippedFile], ann: AnnSettings = AnnSettings(),
                query_banks: dict[str, np.ndarray] | None = None, penalties: np.ndarray | None = None,
                descriptions: list[str] | None = None) -> Path:
    """Write a new generation and make it live atomically; old generations are then removed.
    ``query_banks``: the encoder's (:meth:`Encoder.query_banks`), for a ranking that needs them;
    ``penalties``: rows already measured by this encoder, NaN elsewhere (:func:`library_penalties`);
    ``descriptions``: each item's own description ("" for none; :mod:`qvi_app.audio.tags`), for the
    name filter; without them the index is filtered by path alone."""
    index_dir = Path(index_dir)
    if descriptions is not None and len(descriptions) != len(items):
        raise ValueError(f"{len(descriptions)} descriptions for {len(items)} items")
    try:
        return _write_generation(index_dir, encoder, library_root, items, embeddings, skipped, ann, query_banks,
                                 penalties, descriptions)
    except OSError as exc:
        hint = " (the disk is full)" if exc.errno == errno.ENOSPC else ""
        raise LibraryIndexError(f"cannot write the index at {index_dir}: {exc.strerror or exc}{hint}; "
                                f"the previous index, if any, is unchanged") from None


def _write_generation(index_dir: Path, encoder: dict, library_root: Path, items: list[IndexItem],
                      embeddings: np.ndarray, skipped: list[SkippedFile], ann: AnnSettings,
                      query_banks: dict[str, np.ndarray] | None, penalties: np.ndarray | None,
                      descriptions: list[str] | None) -> Path:
    index_dir.mkdir(parents=True, exist_ok=True)
    embeddings = np.ascontiguousarray(embeddings, dtype=np.float32).reshape(len(items), int(encoder["dim"]))
    gen = index_dir / f"gen-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    gen.mkdir()
    try:
        # The embeddings file is written, synced and hashed on a thread while the penalties and the
        # approximate index are computed: one waits on the disk, the others on the CPU (1M sounds:
        # 4 GB, 10 s to write and 2.5 s to hash, taken off a 64 s build).
        with ThreadPoolExecutor(1) as disk:
            written = disk.submit(_save_synced, gen / "embeddings.npy", embeddings)
            try:
                ranking = RankingSettings.from_dict(encoder["ranking"]) if "ranking" in encoder else None
                if ranking is not None and ranking.hub_bank != "none":
                    np.save(gen / "penalties.npy", library_penalties(embeddings, encoder["blocks"], ranking,
                                                                     query_banks=query_banks, known=penalties))
                if len(items) >= ann.threshold:
                    IvfIndex.build(embeddings, ann).save(gen / IvfIndex.FILE)
            finally:
                embeddings_sha256 = written.result()
        names, codes = category_codes(items)
        np.save(gen / "categories.npy", codes)
        meta = {"format_version": FORMAT_VERSION, "qvi_version": __version__, "created": time.time(),
                "encoder_id": encoder["id"], "encoder_name": encoder["name"], "encoder_version": encoder["version"],
                "dim": int(encoder["dim"]), "library_root": str(Path(library_root).resolve()),
                "library_root_rel": os.path.relpath(Path(library_root).resolve(), index_dir.resolve()),
                "embeddings_sha256": embeddings_sha256, "categories": json.dumps(names),
                "cut_above_floor_db": CUT_ABOVE_FLOOR_DB}
        if len(items) >= ann.threshold:
            meta.update(ann_threshold=ann.threshold, ann_nprobe=ann.nprobe, ann_filter_min=ann.filter_min)
        if ranking is not None:
            meta.update(ranking=json.dumps(ranking.to_dict()), blocks=json.dumps(encoder["blocks"]))
        if descriptions is not None:
            meta.update(descriptions=READER)
        con = sqlite3.connect(gen / "meta.sqlite")
        try:
            con.executescript(_SCHEMA)
            con.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
            con.executemany("INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                            [(i, path_to_db(it.path), it.category, it.duration, it.sample_rate, it.size, it.mtime,
                              it.content_hash) for i, it in enumerate(items)])
            con.executemany("INSERT INTO skipped VALUES (?, ?, ?, ?)",
                            [(path_to_db(s.path), s.size, s.mtime, s.reason) for s in skipped])
            con.executemany("INSERT INTO descriptions VALUES (?, ?)",
                            [(i, text) for i, text in enumerate(descriptions or ()) if text])
            con.commit()
        finally:
            con.close()
        for f in gen.iterdir():
            if f.name != "embeddings.npy":                              # synced by _save_synced
                _fsync(f)
        _fsync(gen)
        tmp = index_dir / f"CURRENT.{os.getpid()}.tmp"
        tmp.write_text(gen.name + "\n")
        _fsync(tmp)
        os.replace(tmp, index_dir / "CURRENT")
        _fsync(index_dir)
    except BaseException:
        shutil.rmtree(gen, ignore_errors=True)
        raise
    for old in index_dir.glob("gen-*"):
        if old != gen:
            shutil.rmtree(old, ignore_errors=True)
    return gen


def _save_synced(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as .npy, sync it to disk and return the file's SHA-256."""
    np.save(path, array)
    _fsync(path)
    return file_sha256(path)


def _resolve_root(index_dir: Path, meta: dict) -> Path:
    rel = (Path(index_dir) / meta.get("library_root_rel", "")).resolve()
    return rel if rel.is_dir() else Path(meta["library_root"])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def describe(index: ReferenceIndex) -> dict:
    return {"index": str(index.index_dir), "library": str(index.library_root), "items": len(index),
            "skipped": len(index.skipped), "categories": len(index.categories()),
            "encoder": index.encoder_id, "built": time.strftime("%Y-%m-%d %H:%M:%S",
                                                              time.localtime(float(index.meta["created"]))),
            "search": _search_kind(index), "described": _described(index)}


def _reader(value) -> int:
    """The description reader named by an index's meta (:data:`READER`); 0 for none, or for
    anything but a small whole number (a received index's meta is data, not trusted)."""
    return int(value) if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 4 else 0


def _described(index: ReferenceIndex) -> str:
    """What the name filter knows of the sounds' own descriptions (audio.tags), in words."""
    if not index.items.described:
        return (f"not read (an index made before qvi 0.19): qvi index {index.library_root} reads them, "
                "embedding nothing again")
    told = (f"{index.items.described_count()} of {len(index)} sounds carry a description (tags, BWF, iXML; "
            "the name filter searches them)")
    if index.items.reader < READER:
        told += (f"; read before qvi 0.20 read library tools' iXML and RIFF keywords: qvi index "
                 f"{index.library_root} reads them again, embedding nothing again")
    return told


def _search_kind(index: ReferenceIndex) -> str:
    """How a search runs, in words: exact, or the approximate index's structure and memory."""
    if index.ann is None:
        return "exact (every sound scored)"
    ann = index.ann
    refine = f", refining codes keep {ann.settings.refine_keep}" if ann.refines else ""
    return (f"approximate: {ann.description}, {ann.settings.nprobe} lists probed, shortlist {ann.shortlist:,}"
            f"{refine}; {ann.memory_bytes() / 1e6:,.0f} MB in memory")


__all__ = ["IndexItem", "ReferenceIndex", "SearchHit", "SkippedFile", "write_index", "describe",
           "current_generation", "peek"]
