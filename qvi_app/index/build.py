"""Build or update an index from a library folder; only new or changed files are embedded."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from tqdm import tqdm

from qvi_app.audio.load import CUT_ABOVE_FLOOR_DB, unread_format
from qvi_app.audio.tags import READER, FileTags, file_tags
from qvi_app.encoders import Encoder
from qvi_app.errors import LibraryIndexError, QviError, StaleIndexError, printable
from qvi_app.index.scan import UNCATEGORIZED, nothing_found, scan_library
from qvi_app.index.ann import AnnSettings
from qvi_app.index.progress_store import ProgressStore
from qvi_app.index.store import (IndexItem, ReferenceIndex, SkippedFile, current_generation, file_sha256,
                                  write_index)
from qvi_app.index.embedders import Embedder, make_embedder

try:
    import fcntl
except ImportError:                   # not on Windows: concurrent runs then meet SQLite's own locking
    fcntl = None

ProgressFn = Callable[[int, int, str], None]


class IndexingCancelled(QviError):
    """Indexing was cancelled; the previous index is untouched."""


@dataclass
class BuildReport:
    index_dir: Path
    total: int = 0
    embedded: int = 0
    reused: int = 0
    removed: int = 0
    resumed: int = 0              # embedded by an earlier, interrupted run
    rebuilt_reason: str | None = None
    skipped: list[SkippedFile] = field(default_factory=list)
    library_root: Path | None = None
    unread: list[SkippedFile] = field(default_factory=list)    # in formats qvi does not read: said, not kept

    def summary(self) -> str:
        lines = [f"indexed {self.total} sounds into {self.index_dir} "
                 f"({self.embedded} embedded, {self.reused} unchanged, "
                 + (f"{self.resumed} from an interrupted run, " if self.resumed else "")
                 + f"{self.removed} removed, "
                 f"{len(self.skipped)} skipped"
                 + (f", {len(self.unread)} in formats qvi does not read" if self.unread else "") + ")"]
        if self.rebuilt_reason:
            lines.insert(0, f"rebuilding from scratch: {self.rebuilt_reason}")
        lines += [f"  skipped {printable(s.path)}: {printable(s.reason)}" for s in self.skipped]
        lines += [f"  left out {printable(s.path)}: {s.reason}" for s in self.unread]
        if self.total == 0 and not self.skipped and not self.removed and not self.unread:
            lines.append("  " + nothing_found(printable(str(self.library_root or ''))))
        return "\n".join(lines)


def _previous(index_dir: Path, encoder: Encoder,
              report: BuildReport) -> tuple[ReferenceIndex | None, ReferenceIndex | None]:
    """(the live index if its embeddings can be kept, the live index as opened): an index of the
    same encoder made with an older cut is opened once and still gives its categories."""
    if current_generation(index_dir) is None:
        return None, None
    try:
        old = ReferenceIndex.open(index_dir, encoder_id=encoder.id)
    except StaleIndexError:
        report.rebuilt_reason = "the index was built by another encoder or version"
        return None, None
    except QviError as exc:
        report.rebuilt_reason = str(exc)
        return None, None
    if old.cut_outdated:
        # Its embeddings are of sounds cut otherwise: kept, they would mix two cuts in one index.
        report.rebuilt_reason = (f"the index was made by an older qvi, which cut each sound "
                                 f"{old.cut_above_floor_db:g} dB over its noise floor instead of "
                                 f"{CUT_ABOVE_FLOOR_DB:g}: every sound is embedded again")
        return None, old
    return old, old


def update_index(library, index_dir, encoder: Encoder, *, categories_csv=None, show_progress: bool = True,
                 on_progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 ann: AnnSettings = AnnSettings(), workers: int | None = None, engine: str = "local",
                 ray_address: str | None = None, runtime: str = "auto",
                 embedder: Embedder | None = None) -> BuildReport:
    """Bring ``index_dir`` up to date with ``library``; returns what was done.

    Files whose path, size and mtime are unchanged (or whose content hash matches an indexed
    file) keep their embedding; bad files are recorded with their reason and not retried
    until they change. New files are embedded by ``embedder`` (:mod:`qvi_app.index.embedders`;
    default: the one ``engine`` names, with ``workers`` processes or Ray actors, ``ray_address``
    and ``runtime``) and recorded as they finish, so a run that is interrupted or cancelled
    resumes where it stopped. ``cancel`` aborts without touching the live index.
    """
    embedder = embedder or make_embedder(engine, encoder, workers=workers, ray_address=ray_address, runtime=runtime)
    library, index_dir = Path(library), Path(index_dir)
    report = BuildReport(index_dir, library_root=Path(library))
    unread = []
    files = scan_library(library, categories_csv, unread)
    report.unread = [SkippedFile(f.relpath, f.size, f.mtime, unread_format(f.relpath)) for f in unread]
    with _exclusive(index_dir):
        return _update(library, index_dir, encoder, files, report, embedder, show_progress, on_progress, cancel, ann,
                       categories_csv is not None)


@dataclass(frozen=True)
class LibraryChanges:
    """How a library folder differs from its index: what an update would embed or drop."""

    new: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.new or self.changed or self.removed)

    def summary(self) -> str:
        parts = [f"{len(paths)} {word}" for paths, word in
                 ((self.new, "new"), (self.changed, "changed"), (self.removed, "removed")) if paths]
        return ", ".join(parts) or "no changes"


def pending_changes(index: ReferenceIndex, hash_budget_bytes: int = 512 << 20) -> LibraryChanges:
    """The library's files compared with its index by path, size and date, as an update
    compares them, without embedding anything. A file whose date changed but not its size is
    compared by content: a copied or checked-out library has new dates throughout (the demo
    library on a fresh clone: 604 of 604), and an update keeps such a file's embedding. Past
    ``hash_budget_bytes`` of such files it counts as changed, which an update settles. Raises
    QviError when the library folder is gone."""
    root = index.library_root
    files = scan_library(root)
    items = {it.path: it for it in index.items}
    skipped = {sk.path: (sk.size, sk.mtime) for sk in index.skipped}
    new, changed, budget = [], [], hash_budget_bytes
    for f in files:
        it = items.get(f.relpath)
        if it is None:                                  # new, or left out before (retried if changed)
            if f.relpath not in skipped:
                new.append(f.relpath)
            elif skipped[f.relpath] != (f.size, f.mtime):
                changed.append(f.relpath)
            continue
        if it.size == f.size and it.mtime == f.mtime:
            continue
        if it.size == f.size and f.size <= budget:
            budget -= f.size
            try:
                if file_sha256(root / f.relpath) == it.content_hash:
                    continue
            except OSError:
                pass                                    # unreadable now: an update records why
        changed.append(f.relpath)
    present = {f.relpath for f in files}
    return LibraryChanges(tuple(new), tuple(changed), tuple(p for p in items if p not in present))


def _given_categories(index_dir: Path, old: ReferenceIndex | None) -> dict[str, str]:
    """{path: category} of the live index, also of one made by another model (being rebuilt)."""
    if old is None:
        if current_generation(index_dir) is None:
            return {}
        try:
            old = ReferenceIndex.open(index_dir)
        except QviError:
            return {}                                   # damaged: categories come from the folders
    return {it.path: it.category for it in old.items}


def _known_penalties(old: ReferenceIndex | None, rows: list[int | None]) -> np.ndarray | None:
    """The old index's hubness penalties of the sounds kept from it (NaN for new ones), when they
    stay valid: measured against the model's query bank, which the same encoder id guarantees.
    At a million sounds this spares an update about 18 s of penalties (docs/BENCHMARKS.md)."""
    if old is None or old.penalties is None or old.ranking is None or old.ranking.hub_bank != "queries":
        return None
    known = np.full((len(rows), old.penalties.shape[1]), np.nan, np.float32)
    have = [k for k, r in enumerate(rows) if r is not None]
    known[have] = old.penalties[[rows[k] for k in have]]
    return known


@contextlib.contextmanager
def _exclusive(index_dir: Path):
    """Hold ``index_dir/.lock`` for the whole update: a second run on the same index is told at
    once that another is at work (two runs used to meet as SQLite's 'database is locked')."""
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(index_dir / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise LibraryIndexError(f"cannot write the index at {index_dir}: {exc.strerror or exc}") from None
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LibraryIndexError(f"another qvi index run is updating {index_dir}; wait for it to finish, "
                                        "then run this again (it will only add what is still missing)") from None
        yield
    finally:
        os.close(fd)


class _Update:
    """What each file of the library becomes in the new index, in scan order: a slot holds
    (IndexItem, vector) or a SkippedFile. Filled first from what is known (the old index, an
    interrupted run's progress), then by :meth:`record` as the embedder's results come back."""

    def __init__(self, library: Path, files, old: ReferenceIndex | None, partial: ProgressStore,
                 report: BuildReport):
        self.library, self.files, self.old, self.partial, self.report = library, files, old, partial, report
        self.slots: list = [None] * len(files)
        self.old_rows: dict[int, int] = {}      # slot → row of the old index it was taken from
        self.described: dict[int, FileTags] = {}   # slot → what its file says of itself, once read (embed_file)
        self.queued: deque = deque()            # (slot, digest) of each file handed on, in order
        self.done = 0
        self.by_hash = {it.content_hash: row for row, it in enumerate(old.items)} if old else {}
        by_path = {it.path: row for row, it in enumerate(old.items)} if old else {}
        old_skips = {sk.path: sk for sk in old.skipped} if old else {}
        self.todo: list[int] = []
        for i, f in enumerate(files):
            row = by_path.get(f.relpath)
            if row is not None and old.items[row].size == f.size and old.items[row].mtime == f.mtime:
                self._reuse(i, row, old.items[row].content_hash)
                continue
            skip = old_skips.get(f.relpath)
            if skip and skip.size == f.size and skip.mtime == f.mtime:
                self._set(i, skip)
                continue
            known = partial.lookup(f.relpath, f.size, f.mtime)
            if known:
                digest, duration, sr, vec, reason = known
                self._set(i, SkippedFile(f.relpath, f.size, f.mtime, reason) if vec is None else
                          (IndexItem(f.relpath, f.category, duration, sr, f.size, f.mtime, digest), vec))
                report.resumed += 1
                continue
            self.todo.append(i)
        self.old_paths = set(by_path)

    def _set(self, i: int, value) -> None:
        self.slots[i] = value
        self.done += 1

    def _reuse(self, i: int, row: int, digest: str) -> None:
        f, it = self.files[i], self.old.items[row]
        self._set(i, (IndexItem(f.relpath, f.category, it.duration, it.sample_rate, f.size, f.mtime, digest),
                      self.old.embeddings[row]))
        self.old_rows[i] = row
        self.report.reused += 1

    def paths_to_embed(self, cancel: threading.Event | None) -> Iterator[Path]:
        """The files still to embed, hashed as the embedder asks for them (hashing overlaps
        embedding); a file whose bytes the old index holds (moved, copied) is taken from it."""
        for i in self.todo:
            if cancel is not None and cancel.is_set():
                return
            f = self.files[i]
            try:
                digest = file_sha256(self.library / f.relpath)
            except OSError as exc:
                self._set(i, SkippedFile(f.relpath, f.size, f.mtime, f"cannot read ({exc.strerror or exc})"))
                continue
            if digest in self.by_hash:
                self._reuse(i, self.by_hash[digest], digest)
                continue
            self.queued.append((i, digest))
            yield self.library / f.relpath

    def record(self, result: tuple) -> str:
        """Fill the slot of the oldest file handed on with its result, and keep it for a resumed
        run; returns its path."""
        i, digest = self.queued.popleft()
        f = self.files[i]
        if result[0] == "ok":
            _, vec, duration, sr, self.described[i] = result
            self._set(i, (IndexItem(f.relpath, f.category, duration, sr, f.size, f.mtime, digest), vec))
            self.partial.add(f.relpath, f.size, f.mtime, digest, duration, sr, vec)
            self.report.embedded += 1
        else:
            self._set(i, SkippedFile(f.relpath, f.size, f.mtime, result[1]))
            self.partial.add(f.relpath, f.size, f.mtime, digest, reason=result[1])
        return f.relpath

    def write(self, index_dir: Path, encoder: Encoder, ann: AnnSettings) -> None:
        kept = [i for i, s in enumerate(self.slots) if isinstance(s, tuple)]
        items = [self.slots[i][0] for i in kept]
        report = self.report
        report.skipped = [s for s in self.slots if isinstance(s, SkippedFile)]
        report.removed = len(self.old_paths - {it.path for it in items})
        report.total = len(items)
        emb = np.stack([self.slots[i][1] for i in kept]).astype(np.float32) if kept else \
            np.zeros((0, encoder.dim), np.float32)
        # A description is in the file's bytes, so a sound kept from the old index (by path or by
        # content) keeps its description (and its category). Files resumed from an interrupted
        # run, or kept from an index whose descriptions were not read, or read by an older
        # reader, are read now (0.3 ms a file).
        if self.old is not None and self.old.items.reader == READER:
            old = self.old.items.descriptions(self.old_rows.values())
            self.described.update((i, FileTags(old.get(row, ""))) for i, row in self.old_rows.items())
        tags = [self.described[i] if i in self.described else file_tags(self.library / self.files[i].relpath)
                for i in kept]
        # A sound neither its folder, its name nor a CSV gives a category takes the one its
        # library tool wrote into it (a library indexed at its own folder, its files flat).
        items = [replace(it, category=t.category) if it.category == UNCATEGORIZED and t.category else it
                 for it, t in zip(items, tags)]
        descriptions = [t.description for t in tags]
        write_index(index_dir, encoder=encoder.describe(), library_root=self.library, items=items,
                    embeddings=emb, skipped=report.skipped, ann=ann, query_banks=encoder.query_banks(),
                    penalties=_known_penalties(self.old, [self.old_rows.get(i) for i in kept]),
                    descriptions=descriptions)


def _update(library: Path, index_dir: Path, encoder: Encoder, files, report: BuildReport, embedder: Embedder,
            show_progress: bool, on_progress: ProgressFn | None, cancel: threading.Event | None,
            ann: AnnSettings, explicit_categories: bool) -> BuildReport:
    partial = ProgressStore(index_dir, encoder.id, encoder.dim)
    old, opened = _previous(index_dir, encoder, report)
    if not explicit_categories:
        # An update without the CSV the index was built with (a plain `qvi index FOLDER`, the
        # window's re-index or rebuild) would otherwise give every sound its folder's category again.
        known = _given_categories(index_dir, opened)
        files = [replace(f, category=known.get(f.relpath, f.category)) for f in files]
    state = _Update(library, files, old, partial, report)
    bar = tqdm(total=len(files), initial=state.done, desc="indexing", unit="file",
               disable=not show_progress, leave=False)
    try:
        for result in embedder.embed(state.paths_to_embed(cancel), len(state.todo)):
            path = state.record(result)
            bar.n = state.done
            bar.refresh()
            if on_progress:
                on_progress(state.done, len(files), path)
            if cancel is not None and cancel.is_set():
                break
    finally:
        bar.close()
        partial.close()
    if cancel is not None and cancel.is_set():
        raise IndexingCancelled("indexing cancelled; the previous index is unchanged "
                                "(files embedded so far are kept for the next run)")
    if on_progress:
        on_progress(len(files), len(files), "")
    state.write(index_dir, encoder, ann)
    partial.discard()
    return report
