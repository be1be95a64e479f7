"""SQLite store of ratings and the query audio they were given for.

One row per (query, result): rating again replaces the earlier rating. Every rating is
committed at once in WAL mode, so a crash or kill never loses an earlier one. Query audio is
saved as a WAV next to the database, named by its content hash.
"""

from __future__ import annotations

import csv
import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from qvi_app.errors import QviError

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,          -- unix time of the latest change
    query_hash TEXT NOT NULL,       -- sha256 of the query's float32 samples and rate
    query_path TEXT NOT NULL,       -- saved query audio (WAV)
    result_path TEXT NOT NULL,      -- the rated library file
    rank INTEGER NOT NULL,
    score REAL NOT NULL,
    rating INTEGER NOT NULL CHECK (rating IN (-1, 1)),
    category_filter TEXT,           -- NULL when searching all categories
    model_id TEXT NOT NULL,
    UNIQUE (query_hash, result_path)
);
"""


@dataclass(frozen=True)
class Rating:
    created: float
    query_hash: str
    query_path: str
    result_path: str
    rank: int
    score: float
    rating: int
    category_filter: str | None
    model_id: str


class FeedbackStore:
    """Open (creating if needed) the feedback database at ``path``."""

    def __init__(self, path):
        self.path = Path(path)
        self.audio_dir = self.path.parent / "queries"
        try:
            self.audio_dir.mkdir(parents=True, exist_ok=True)
            self._con = sqlite3.connect(self.path, check_same_thread=False)
            self._con.execute("PRAGMA journal_mode=WAL")
            self._con.execute("PRAGMA synchronous=FULL")
            version = self._con.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA_VERSION):
                raise QviError(f"{self.path}: feedback database version {version} is newer than this qvi "
                               f"(reads {SCHEMA_VERSION}); upgrade qvi")
            self._con.executescript(_SCHEMA)
            self._con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._con.commit()
        except (OSError, sqlite3.Error) as exc:
            raise QviError(f"cannot open the feedback database {self.path}: {exc}") from None

    def save_query(self, wave: np.ndarray, sr: int) -> tuple[str, Path]:
        """Write the query audio once (by content hash); returns (hash, path)."""
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        digest = hashlib.sha256(wave.tobytes() + str(int(sr)).encode()).hexdigest()
        path = self.audio_dir / f"{digest[:16]}.wav"
        if not path.exists():
            tmp = path.with_suffix(".tmp.wav")
            try:
                sf.write(tmp, wave, int(sr), subtype="FLOAT")
                tmp.replace(path)
            except (OSError, sf.LibsndfileError) as exc:
                tmp.unlink(missing_ok=True)
                raise QviError(f"cannot save the query audio in {self.audio_dir}: {exc}") from None
        return digest, path

    def rate(self, *, wave: np.ndarray, sr: int, result_path, rank: int, score: float, rating: int,
             category_filter: str | None, model_id: str) -> Rating:
        """Record (or change) a +1 / -1 rating of one result for one query; committed at once."""
        if rating not in (-1, 1):
            raise ValueError(f"rating must be +1 or -1, not {rating!r}")
        digest, qpath = self.save_query(wave, sr)
        row = Rating(time.time(), digest, str(qpath), str(result_path), int(rank), float(score), rating,
                     category_filter, model_id)
        try:
            with self._con:
                self._con.execute(
                    "INSERT INTO ratings (created, query_hash, query_path, result_path, rank, score, rating, "
                    "category_filter, model_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (query_hash, result_path) DO UPDATE SET created=excluded.created, "
                    "rank=excluded.rank, score=excluded.score, rating=excluded.rating, "
                    "category_filter=excluded.category_filter, model_id=excluded.model_id",
                    (row.created, row.query_hash, row.query_path, row.result_path, row.rank, row.score,
                     row.rating, row.category_filter, row.model_id))
        except sqlite3.Error as exc:
            raise QviError(f"cannot write to the feedback database {self.path}: {exc}") from None
        return row

    def ratings(self) -> list[Rating]:
        cur = self._con.execute("SELECT created, query_hash, query_path, result_path, rank, score, rating, "
                                "category_filter, model_id FROM ratings ORDER BY id")
        return [Rating(*r) for r in cur]

    def export_csv(self, path) -> int:
        """Write all ratings to a CSV file; returns the number of rows."""
        rows = self.ratings()
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", *list(Rating.__dataclass_fields__)[1:]])
            for r in rows:
                w.writerow([time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.created)), r.query_hash,
                            r.query_path, r.result_path, r.rank, f"{r.score:.6f}", r.rating,
                            r.category_filter or "", r.model_id])
        return len(rows)

    def close(self) -> None:
        self._con.close()
