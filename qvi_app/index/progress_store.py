"""Embeddings computed so far by an unfinished indexing run, so an interrupted run resumes.

A small SQLite file (``partial.sqlite`` in the index folder) gets each embedded or refused
file as soon as it is done, committed at least every second; a run killed at any point loses
at most that second of work. It is tied to one encoder id and deleted once the index is written.
"""

from __future__ import annotations

import errno
import sqlite3
import time
from pathlib import Path

import numpy as np

from qvi_app.errors import LibraryIndexError
from qvi_app.index.scan import path_to_db

FILE_NAME = "partial.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS done (path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime REAL NOT NULL,
    content_hash TEXT NOT NULL, duration REAL, sample_rate INTEGER, vector BLOB, reason TEXT);
"""


def _unwritable(index_dir: Path, exc: Exception) -> LibraryIndexError:
    full = getattr(exc, "errno", None) == errno.ENOSPC or "full" in str(exc)
    return LibraryIndexError(f"cannot write the index at {index_dir}: {getattr(exc, 'strerror', None) or exc}"
                             f"{' (the disk is full)' if full else ''}; the previous index, if any, is unchanged")


class ProgressStore:
    def __init__(self, index_dir: Path, encoder_id: str, dim: int):
        self.index_dir = index_dir
        self.path = index_dir / FILE_NAME
        self.dim = dim
        try:
            index_dir.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA)
            row = self.db.execute("SELECT value FROM meta WHERE key='encoder_id'").fetchone()
            if row is None or row[0] != encoder_id:          # another model's leftovers are useless
                self.db.execute("DELETE FROM done")
                self.db.execute("INSERT OR REPLACE INTO meta VALUES ('encoder_id', ?)", (encoder_id,))
            self.db.execute("BEGIN")
        except (OSError, sqlite3.Error) as exc:
            raise _unwritable(index_dir, exc) from None
        self._last_commit = time.monotonic()

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM done").fetchone()[0]

    def lookup(self, path: str, size: int, mtime: float):
        """(content_hash, duration, sample_rate, vector or None, reason or None) of a finished file."""
        row = self.db.execute("SELECT content_hash, duration, sample_rate, vector, reason FROM done "
                              "WHERE path=? AND size=? AND mtime=?", (path_to_db(path), size, mtime)).fetchone()
        if row is None:
            return None
        vec = np.frombuffer(row[3], np.float32).copy() if row[3] is not None else None
        if vec is not None and vec.shape != (self.dim,):
            return None
        return row[0], row[1], row[2], vec, row[4]

    def add(self, path: str, size: int, mtime: float, content_hash: str, duration=None, sample_rate=None,
            vector: np.ndarray | None = None, reason: str | None = None) -> None:
        blob = np.asarray(vector, np.float32).tobytes() if vector is not None else None
        try:
            self.db.execute("INSERT OR REPLACE INTO done VALUES (?,?,?,?,?,?,?,?)",
                            (path_to_db(path), size, mtime, content_hash, duration, sample_rate, blob, reason))
            if time.monotonic() - self._last_commit > 1.0:
                self.commit()
        except sqlite3.Error as exc:
            raise _unwritable(self.index_dir, exc) from None

    def commit(self) -> None:
        self.db.execute("COMMIT")
        self.db.execute("BEGIN")
        self._last_commit = time.monotonic()

    def close(self) -> None:
        try:
            self.db.execute("COMMIT")
        except sqlite3.Error:
            pass
        self.db.close()

    def discard(self) -> None:
        """Delete the file (after :meth:`close`), once the index it fed has been written."""
        for suffix in ("", "-wal", "-shm"):
            Path(str(self.path) + suffix).unlink(missing_ok=True)
