"""An index's per-sound metadata, read from its SQLite file only where it is needed.

Opening a million-sound index used to build a million ``IndexItem`` objects in Python at every
call (about 20 s and 9.6 GB at 1M, measured by the scale audit of issue 14). Here only the rows
a caller asks for are materialised: a search's top N, one row for "more like this", a streamed
pass for the indexer. The category of every row, which the category filter needs in full, is a
NumPy column (``categories.npy``) written with the index.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qvi_app.audio.tags import MAX_DESCRIPTION
from qvi_app.errors import LibraryIndexError, printable
from qvi_app.index.scan import path_from_db, path_to_db

_COLUMNS = "path, category, duration, sample_rate, size, mtime, content_hash"
#: Rows fetched per round trip when the whole table is streamed.
STREAM_CHUNK = 20_000


@dataclass(frozen=True)
class IndexItem:
    path: str             # relative to the library root (POSIX)
    category: str
    duration: float       # seconds
    sample_rate: int      # Hz, of the file on disk
    size: int             # bytes
    mtime: float
    content_hash: str     # sha256 of the file bytes


@dataclass(frozen=True)
class SkippedFile:
    path: str
    size: int
    mtime: float
    reason: str


def connect_readonly(db: Path) -> sqlite3.Connection:
    """A read-only connection to a finished generation's database. ``immutable`` tells SQLite the
    file cannot change (a generation never does), so it takes no locks and writes nothing: it works
    on read-only media. ``as_uri`` percent-encodes ``#``, ``%`` and ``?`` in the path."""
    return sqlite3.connect(f"{Path(db).resolve().as_uri()}?mode=ro&immutable=1", uri=True,
                           check_same_thread=False)


class ItemTable(Sequence):
    """The index's items as a read-only sequence: ``table[row]``, ``len``, iteration (streamed in
    chunks), :meth:`rows` for a batch and :meth:`row_of` for a path, each one SQL query.

    Safe to share between threads (the window searches on a worker thread)."""

    def __init__(self, con: sqlite3.Connection, count: int, where: str = "?", reader: int = 0):
        self._con = con
        self._count = count
        self._where = where                  # the index folder, for messages
        self._lock = threading.Lock()
        #: Which description reader (:data:`qvi_app.audio.tags.READER`) wrote the ``descriptions``
        #: table: 0 for none (an index from before 0.19, filtered by path alone until updated).
        self.reader = reader
        con.create_function("qvi_fold", 2, _folded, deterministic=True)

    @property
    def described(self) -> bool:
        """Whether the index holds its files' own descriptions (written since 0.19)."""
        return self.reader > 0

    def _query(self, sql: str, params=()) -> list[tuple]:
        """Rows of one query. A file damaged after the index was opened is reported as such,
        with the way out, instead of a database traceback in the middle of a search."""
        try:
            with self._lock:
                return self._con.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise LibraryIndexError(f"index at {printable(self._where)} is damaged (its metadata cannot be read: "
                                    f"{exc}); rebuild it with qvi index") from None

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row):
        if isinstance(row, slice):
            return [self[i] for i in range(*row.indices(self._count))]
        row = int(row)
        if row < 0:
            row += self._count
        if not 0 <= row < self._count:
            raise IndexError(f"row {row} is outside the index's {self._count} items")
        return self.rows([row])[0]

    def rows(self, rows) -> list[IndexItem]:
        """The items of ``rows``, in that order."""
        rows = [int(r) for r in rows]
        if not rows:
            return []
        found = {r[0]: IndexItem(path_from_db(r[1]), *r[2:])
                 for r in self._rows_in(f"SELECT row, {_COLUMNS} FROM items WHERE row IN", rows)}
        missing = [r for r in rows if r not in found]
        if missing:
            raise LibraryIndexError(f"index at {printable(self._where)} is damaged (its metadata has no row "
                                    f"{missing[0]}); rebuild it with qvi index")
        return [found[r] for r in rows]

    def __iter__(self) -> Iterator[IndexItem]:
        for start in range(0, self._count, STREAM_CHUNK):
            chunk = self._query(f"SELECT {_COLUMNS} FROM items WHERE row >= ? AND row < ? ORDER BY row",
                                (start, start + STREAM_CHUNK))
            yield from (IndexItem(path_from_db(r[0]), *r[1:]) for r in chunk)

    def row_of(self, relpath: str) -> int | None:
        """The row of the item stored under ``relpath``, None when there is none (an index lookup)."""
        r = self._query("SELECT row FROM items WHERE path = ?", (path_to_db(relpath),))
        return int(r[0][0]) if r else None

    def rows_named(self, words: tuple[tuple[str, bool], ...]) -> np.ndarray:
        """The rows (sorted, int64) whose case-folded path or description holds every term of
        ``words`` to hold and none to leave out (folded already, as :func:`~qvi_app.index.filters.name_words` gives
        them; one word may be in the name and another in the description): one pass over the
        table in SQL, each text folded by Python as SQLite hands it over (``LIKE`` folds ASCII
        letters only: "STRASSE" would not find "Straße")."""
        if not words:
            return np.arange(self._count, dtype=np.int64)
        if self.described:
            # path and description as one text ("\n" between them, so no word spans the two), the
            # description no longer than qvi writes one (see descriptions)
            text = f"qvi_fold(path, substr(text, 1, {MAX_DESCRIPTION}))"
            source = "items LEFT JOIN descriptions USING (row)"
        else:
            text, source = "qvi_fold(path, NULL)", "items"
        test = " AND ".join(f"instr({text}, ?) {'>' if held else '='} 0" for _, held in words)
        found = self._query(f"SELECT row FROM {source} WHERE {test} ORDER BY row", tuple(w for w, _ in words))
        return np.fromiter((r[0] for r in found), np.int64, count=len(found))

    def described_count(self) -> int:
        """How many items carry a description (0 for an index without them)."""
        return self._query("SELECT COUNT(*) FROM descriptions")[0][0] if self.described else 0

    def descriptions(self, rows) -> dict[int, str]:
        """The files' own descriptions of those ``rows`` that have one (empty for an index
        without them). Read, like the name filter reads them, no longer than qvi writes them: an
        index folder received from anyone may hold a description of any size."""
        if not self.described:
            return {}
        return dict(self._rows_in(f"SELECT row, substr(text, 1, {MAX_DESCRIPTION}) FROM descriptions WHERE row IN",
                                  rows))

    def _rows_in(self, select: str, rows) -> list[tuple]:
        """``select`` (a query ending in "WHERE row IN") for the distinct ``rows``, 500 at a time
        (SQLite's bound-parameter limit)."""
        rows = sorted({int(r) for r in rows})
        found: list[tuple] = []
        for start in range(0, len(rows), 500):
            part = rows[start:start + 500]
            found += self._query(f"{select} ({','.join('?' * len(part))})", part)
        return found

    def skipped(self) -> list[SkippedFile]:
        return [SkippedFile(path_from_db(r[0]), *r[1:])
                for r in self._query("SELECT path, size, mtime, reason FROM skipped ORDER BY path")]

    def category_column(self) -> tuple[list[str], np.ndarray]:
        """(sorted names, int32 code per row) read column-wise: for indexes written before
        ``categories.npy`` existed."""
        cats = [r[0] for r in self._query("SELECT category FROM items ORDER BY row")]
        names, codes = np.unique(np.array(cats, dtype=object), return_inverse=True)
        return [str(n) for n in names], codes.astype(np.int32)

    def duration_column(self) -> np.ndarray:
        """Every row's length in seconds (float32), read column-wise for the length filter (about
        0.5 s and 4 MB at a million sounds; kept by the index once read)."""
        found = self._query("SELECT duration FROM items ORDER BY row")
        return np.fromiter((r[0] for r in found), np.float32, count=len(found))

    def close(self) -> None:
        self._con.close()


def _folded(path: str | bytes, description: str | None) -> str:
    """A stored path (and description) as the name filter compares it. A name that is not UTF-8
    (kept as bytes) is read with U+FFFD for its stray bytes: SQLite cannot hold the lone
    surrogates Python would give, and a word typed on a keyboard cannot contain them either."""
    text = path.decode("utf-8", "replace") if isinstance(path, bytes) else path
    return f"{text}\n{description}".casefold() if description else text.casefold()


def category_codes(items: list[IndexItem]) -> tuple[list[str], np.ndarray]:
    """(sorted category names, int32 code per item), as written to ``categories.npy``."""
    names = sorted({it.category for it in items})
    index = {c: i for i, c in enumerate(names)}
    return names, np.fromiter((index[it.category] for it in items), np.int32, count=len(items))


__all__ = ["IndexItem", "ItemTable", "SkippedFile", "category_codes", "connect_readonly"]
