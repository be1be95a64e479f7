"""SQLite store of ratings and the query audio they were given for.

One row per (query, result): rating again replaces the earlier rating. Every rating is
committed at once in WAL mode, so a crash or kill never loses an earlier one. Query audio is
saved as a WAV next to the database, named by its content hash.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from qvi_app.errors import QviError

SCHEMA_VERSION = 4                  # 2 added the history, 3 the name filter of a rating, 4 its length filter
_HISTORY = """
CREATE TABLE IF NOT EXISTS history (
    id INTEGER PRIMARY KEY,
    created REAL NOT NULL,          -- unix time of the search
    query_hash TEXT NOT NULL,
    query_path TEXT NOT NULL,       -- saved query audio (WAV)
    label TEXT NOT NULL             -- "your recording", a file name
);
"""
_SCHEMA = _HISTORY + """
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
    name_filter TEXT,               -- the words the list was narrowed by; NULL for none
    length_filter TEXT,             -- the sounds' length it was narrowed to ("1–3 s"); NULL for any
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
    name_filter: str | None
    model_id: str
    length_filter: str | None = None


class FeedbackStore:
    """Open (creating if needed) the feedback database at ``path``.

    A new database is built under a temporary name and linked into place, so no reader ever
    sees a file without its tables. When the folder cannot be written (read-only, full disk),
    an existing database opens read-only: ratings can still be read and exported, and rating
    says why it cannot be saved."""

    def __init__(self, path):
        self.path = Path(path)
        self.audio_dir = self.path.parent / "queries"
        self.read_only = False
        self.read_only_reason = ""
        try:
            if not self.path.exists():
                self._create()
            self._con = sqlite3.connect(self.path, check_same_thread=False)
            self._con.execute("PRAGMA synchronous=FULL")
            self._check_version()
            self._use_wal()
        except (OSError, sqlite3.OperationalError) as exc:
            if not self.path.is_file():
                raise QviError(f"cannot open the feedback database {self.path}: {_why(exc)}") from None
            self._open_read_only(exc)
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None
        self._sweep_temporary_files()

    def _create(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            con = sqlite3.connect(tmp)
            try:
                con.executescript(_SCHEMA)
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                con.execute("PRAGMA journal_mode=WAL")
                con.commit()
            finally:
                con.close()
            try:
                os.link(tmp, self.path)              # fails if another process created it first: use theirs
            except FileExistsError:
                pass
        finally:
            for suffix in ("", "-wal", "-shm"):
                Path(tmp + suffix).unlink(missing_ok=True)

    def _check_version(self) -> None:
        version = self._con.execute("PRAGMA user_version").fetchone()[0]
        if version in (1, 2, 3) and not self.read_only:
            version = self._upgrade()
        if version not in (1, 2, 3, SCHEMA_VERSION):
            raise QviError(f"{self.path}: feedback database version {version} is not the one this qvi reads "
                           f"({SCHEMA_VERSION}); upgrade qvi")
        self._has_name_filter = version >= 3            # an older one on read-only media is read as it is
        self._has_length_filter = version >= 4

    def _use_wal(self) -> None:
        """WAL mode (a no-op unless an older file lacks it). Switching needs the file to itself:
        when another process has it open at that moment, this one leaves the switch to a later
        start instead of failing (SQLite reports that at once, without waiting)."""
        try:
            self._con.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise

    def _upgrade(self) -> int:
        """Bring a version 1-3 database to this one in one transaction (a kill in the middle
        leaves the older database whole). The write lock is taken first and the version read
        again under it: another process opening the same old file at once may have done it."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version == 1:                                # version 1 had no history
                con.execute(_HISTORY)
            if version in (1, 2):                           # nor a name filter: their ratings keep NULL
                con.execute("ALTER TABLE ratings ADD COLUMN name_filter TEXT")
            if version in (1, 2, 3):                        # nor a length filter
                con.execute("ALTER TABLE ratings ADD COLUMN length_filter TEXT")
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
                version = SCHEMA_VERSION
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return version

    def _damaged(self, exc: Exception) -> QviError:
        return QviError(f"the feedback database {self.path} is damaged ({exc}); move it aside and qvi "
                        "starts a new one")

    def _open_read_only(self, cause: Exception) -> None:
        try:
            # immutable: a WAL database on read-only media cannot make its shared-memory file, and
            # nobody can be writing there anyway
            self._con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                                        check_same_thread=False)
            self.read_only, self.read_only_reason = True, _why(cause)
            self._check_version()
        except sqlite3.DatabaseError as exc:
            raise QviError(f"cannot open the feedback database {self.path}: {_why(cause)} ({exc})") from None

    def _sweep_temporary_files(self, older_than_s: float = 3600.0) -> None:
        """Query audio half-written by a killed process (``*.tmp.wav`` an hour old) is removed."""
        if self.read_only or not self.audio_dir.is_dir():
            return
        now = time.time()
        for tmp in self.audio_dir.glob("*.tmp.wav"):
            try:
                if now - tmp.stat().st_mtime > older_than_s:
                    tmp.unlink()
            except OSError:
                pass

    def save_query(self, wave: np.ndarray, sr: int) -> tuple[str, Path]:
        """Write the query audio once (by content hash); returns (hash, path). Each writer uses a
        temporary file of its own, so two processes saving one query cannot lose it."""
        wave = np.ascontiguousarray(wave, dtype=np.float32)
        digest = query_digest(wave, sr)
        path = self.audio_dir / f"{digest[:16]}.wav"
        if not path.exists():
            tmp = None
            try:
                self.audio_dir.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.audio_dir, prefix=f"{digest[:16]}.", suffix=".tmp.wav")
                os.close(fd)
                sf.write(tmp, wave, int(sr), subtype="FLOAT", format="WAV")
                os.replace(tmp, path)
            except (OSError, sf.LibsndfileError) as exc:
                if tmp:
                    Path(tmp).unlink(missing_ok=True)
                raise QviError(f"cannot save the query audio in {self.audio_dir}: {_why(exc, self.audio_dir)}") from None
        return digest, path

    def rate(self, *, wave: np.ndarray, sr: int, result_path, rank: int, score: float, rating: int,
             category_filter: str | None, model_id: str, name_filter: str | None = None,
             length_filter: str | None = None) -> Rating:
        """Record (or change) a +1 / -1 rating of one result for one query, with the filters the
        list was narrowed by; committed at once."""
        if rating not in (-1, 1):
            raise ValueError(f"rating must be +1 or -1, not {rating!r}")
        if self.read_only:
            raise QviError(f"cannot save ratings in {self.path}: {self.read_only_reason}; the ratings already "
                           "there can still be exported")
        digest, qpath = self.save_query(wave, sr)
        row = Rating(time.time(), digest, str(qpath), str(result_path), int(rank), float(score), rating,
                     category_filter, name_filter or None, model_id, length_filter or None)
        try:
            with self._con:
                self._con.execute(
                    "INSERT INTO ratings (created, query_hash, query_path, result_path, rank, score, rating, "
                    "category_filter, name_filter, model_id, length_filter) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (query_hash, result_path) DO UPDATE SET created=excluded.created, "
                    "rank=excluded.rank, score=excluded.score, rating=excluded.rating, "
                    "category_filter=excluded.category_filter, name_filter=excluded.name_filter, "
                    "model_id=excluded.model_id, length_filter=excluded.length_filter",
                    (row.created, row.query_hash, row.query_path, row.result_path, row.rank, row.score,
                     row.rating, row.category_filter, row.name_filter, row.model_id, row.length_filter))
        except sqlite3.Error as exc:
            raise QviError(f"cannot write to the feedback database {self.path}: {_why(exc, self.path.parent)}") from None
        return row

    def unrate(self, *, wave: np.ndarray, sr: int, result_path) -> bool:
        """Take back the rating of one result for one query (a ▲ given by mistake must not pin
        the sound or teach the adapter); committed at once. False when there was none."""
        if self.read_only:
            raise QviError(f"cannot change ratings in {self.path}: {self.read_only_reason}")
        try:
            with self._con:
                cur = self._con.execute("DELETE FROM ratings WHERE query_hash = ? AND result_path = ?",
                                        (query_digest(wave, sr), str(result_path)))
        except sqlite3.Error as exc:
            raise QviError(f"cannot write to the feedback database {self.path}: {_why(exc, self.path.parent)}") from None
        return cur.rowcount > 0

    def remember_query(self, wave: np.ndarray, sr: int, label: str) -> None:
        """Add a search to the history of recent queries (its audio saved once by content)."""
        if self.read_only:
            return
        digest, path = self.save_query(wave, sr)
        try:
            with self._con:
                self._con.execute("INSERT INTO history (created, query_hash, query_path, label) VALUES (?, ?, ?, ?)",
                                  (time.time(), digest, str(path), label))
        except sqlite3.Error as exc:
            raise QviError(f"cannot write to the feedback database {self.path}: {_why(exc, self.path.parent)}") from None

    def recent_queries(self, n: int = 10) -> list[tuple[float, str, str]]:
        """The latest distinct queries: (time, label, saved audio path), newest first."""
        try:
            if not self._con.execute("SELECT 1 FROM sqlite_master WHERE name='history'").fetchone():
                return []
            return self._con.execute("SELECT MAX(created), label, query_path FROM history GROUP BY query_hash "
                                     "ORDER BY MAX(created) DESC LIMIT ?", (n,)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def ratings(self) -> list[Rating]:
        try:
            name = "name_filter" if self._has_name_filter else "NULL"
            length = "length_filter" if self._has_length_filter else "NULL"
            cur = self._con.execute("SELECT created, query_hash, query_path, result_path, rank, score, rating, "
                                    f"category_filter, {name}, model_id, {length} FROM ratings ORDER BY id")
            return [Rating(*r) for r in cur]
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def liked_queries(self) -> int:
        """How many saved queries have at least one liked result (what an adapter learns from)."""
        try:
            return self._con.execute("SELECT COUNT(DISTINCT query_hash) FROM ratings WHERE rating = 1").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            raise self._damaged(exc) from None

    def export_csv(self, path) -> int:
        """Write all ratings to a CSV file; returns the number of rows."""
        rows = self.ratings()
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["timestamp", *list(Rating.__dataclass_fields__)[1:]])
            for r in rows:
                w.writerow([time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(r.created)), r.query_hash,
                            r.query_path, r.result_path, r.rank, f"{r.score:.6f}", r.rating,
                            r.category_filter or "", r.name_filter or "", r.model_id, r.length_filter or ""])
        return len(rows)

    def close(self) -> None:
        self._con.close()


def query_digest(wave: np.ndarray, sr: int) -> str:
    """What a query is known by: the hash of its samples and rate."""
    return hashlib.sha256(np.ascontiguousarray(wave, dtype=np.float32).tobytes() + str(int(sr)).encode()).hexdigest()


def _why(exc: Exception, folder: Path | None = None) -> str:
    """A reason a user can act on: a full disk is named as such (libsndfile says "System error")."""
    full = getattr(exc, "errno", None) == errno.ENOSPC or "full" in str(exc).lower()
    if not full and folder is not None:
        try:
            full = shutil.disk_usage(folder if folder.exists() else folder.parent).free < (1 << 20)
        except OSError:
            pass
    if full:
        return "the disk is full"
    return getattr(exc, "strerror", None) or str(exc)
