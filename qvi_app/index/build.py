"""Build or update an index from a library folder; only new or changed files are embedded."""

from __future__ import annotations

import contextlib
import os
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from qvi_app.encoders import Encoder
from qvi_app.errors import LibraryIndexError, QviError, StaleIndexError, printable
from qvi_app.index.scan import scan_library
from qvi_app.index.ann import AnnSettings
from qvi_app.index.progress_store import ProgressStore
from qvi_app.index.store import (IndexItem, ReferenceIndex, SkippedFile, current_generation, file_sha256,
                                  write_index)
from qvi_app.index.workers import default_workers, embed_files

#: Where files are embedded: worker processes on this machine, or a Ray cluster.
ENGINES = ("local", "ray")
#: Below this many files to embed, runtime 'auto' keeps torch: making an ONNX Runtime session
#: (export, check against torch) takes about 0.4 s per process, more than it saves on a few files.
ONNX_MIN_FILES = 50

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

    def summary(self) -> str:
        lines = [f"indexed {self.total} sounds into {self.index_dir} "
                 f"({self.embedded} embedded, {self.reused} unchanged, "
                 + (f"{self.resumed} from an interrupted run, " if self.resumed else "")
                 + f"{self.removed} removed, "
                 f"{len(self.skipped)} skipped)"]
        if self.rebuilt_reason:
            lines.insert(0, f"rebuilding from scratch: {self.rebuilt_reason}")
        lines += [f"  skipped {printable(s.path)}: {printable(s.reason)}" for s in self.skipped]
        return "\n".join(lines)


def _previous(index_dir: Path, encoder: Encoder, report: BuildReport) -> ReferenceIndex | None:
    if current_generation(index_dir) is None:
        return None
    try:
        return ReferenceIndex.open(index_dir, encoder_id=encoder.id)
    except StaleIndexError:
        report.rebuilt_reason = "the index was built by another encoder or version"
    except QviError as exc:
        report.rebuilt_reason = str(exc)
    return None


def update_index(library, index_dir, encoder: Encoder, *, categories_csv=None, show_progress: bool = True,
                 on_progress: ProgressFn | None = None, cancel: threading.Event | None = None,
                 ann: AnnSettings = AnnSettings(), workers: int | None = None, engine: str = "local",
                 ray_address: str | None = None, runtime: str = "auto") -> BuildReport:
    """Bring ``index_dir`` up to date with ``library``; returns what was done.

    Files whose path, size and mtime are unchanged (or whose content hash matches an indexed
    file) keep their embedding; bad files are recorded with their reason and not retried
    until they change. New files are embedded by ``workers`` processes (default: one per core
    for 200+ files) and recorded as they finish, so a run that is interrupted or cancelled
    resumes where it stopped. ``cancel`` aborts without touching the live index. ``engine="ray"``
    embeds on a Ray cluster instead (``ray_address``; ``workers``: actors, default one per
    cluster CPU; :mod:`qvi_app.index.ray_engine`), with the same results and the same resuming.
    ``runtime``: what runs the network (:mod:`qvi_app.encoders.onnx_runtime`; 'auto': ONNX
    Runtime when installed, for :data:`ONNX_MIN_FILES` files or more).
    """
    if engine not in ENGINES:
        raise QviError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    library, index_dir = Path(library), Path(index_dir)
    report = BuildReport(index_dir)
    files = scan_library(library, categories_csv)
    with _exclusive(index_dir):
        return _update(library, index_dir, encoder, files, report, show_progress, on_progress, cancel, ann, workers,
                       engine, ray_address, runtime)


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


def _update(library: Path, index_dir: Path, encoder: Encoder, files, report: BuildReport, show_progress: bool,
            on_progress: ProgressFn | None, cancel: threading.Event | None, ann: AnnSettings,
            workers: int | None, engine: str = "local", ray_address: str | None = None,
            runtime: str = "auto") -> BuildReport:
    old = _previous(index_dir, encoder, report)
    by_path = {it.path: (row, it) for row, it in enumerate(old.items)} if old else {}
    by_hash = {it.content_hash: row for row, it in enumerate(old.items)} if old else {}
    old_skips = {s.path: s for s in old.skipped} if old else {}
    partial = ProgressStore(index_dir, encoder.id, encoder.dim)

    # Each file ends as (IndexItem, vector) or a SkippedFile; decide what is already known.
    slots: list = [None] * len(files)
    old_rows: dict[int, int] = {}      # slot → row of the old index it was taken from
    todo: list[int] = []
    for i, f in enumerate(files):
        prev = by_path.get(f.relpath)
        if prev and prev[1].size == f.size and prev[1].mtime == f.mtime:
            row, it = prev
            slots[i] = (IndexItem(f.relpath, f.category, it.duration, it.sample_rate, f.size, f.mtime,
                                  it.content_hash), old.embeddings[row])
            old_rows[i] = row
            report.reused += 1
            continue
        skip = old_skips.get(f.relpath)
        if skip and skip.size == f.size and skip.mtime == f.mtime:
            slots[i] = skip
            continue
        done = partial.lookup(f.relpath, f.size, f.mtime)
        if done:
            digest, duration, sr, vec, reason = done
            slots[i] = (SkippedFile(f.relpath, f.size, f.mtime, reason) if vec is None else
                        (IndexItem(f.relpath, f.category, duration, sr, f.size, f.mtime, digest), vec))
            report.resumed += 1
            continue
        todo.append(i)

    bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="indexing", unit="file",
               disable=not show_progress, leave=False)
    queued: deque = deque()          # (slot, file, digest) of each path handed to the encoder, in order
    n_done = len(files) - len(todo)

    def to_embed():
        nonlocal n_done
        for i in todo:
            if cancel is not None and cancel.is_set():
                return
            f = files[i]
            try:
                digest = file_sha256(library / f.relpath)
            except OSError as exc:
                slots[i] = SkippedFile(f.relpath, f.size, f.mtime, f"cannot read ({exc.strerror or exc})")
                n_done += 1
                continue
            if digest in by_hash:                       # moved or copied: same bytes, same embedding
                it = old.items[by_hash[digest]]
                slots[i] = (IndexItem(f.relpath, f.category, it.duration, it.sample_rate, f.size, f.mtime, digest),
                            old.embeddings[by_hash[digest]])
                old_rows[i] = by_hash[digest]
                report.reused += 1
                n_done += 1
                continue
            queued.append((i, f, digest))
            yield library / f.relpath

    if runtime == "auto" and len(todo) < ONNX_MIN_FILES:
        runtime = "torch"                         # exporting to ONNX costs more than it saves
    try:
        if engine == "ray":
            from qvi_app.index.ray_engine import connect, embed_files_ray

            connect(ray_address)
            embedded = embed_files_ray(encoder, to_embed(), workers, runtime=runtime)
        else:
            embedded = embed_files(encoder, to_embed(), workers if workers is not None else default_workers(len(todo)),
                                   runtime=runtime)
        for result in embedded:
            i, f, digest = queued.popleft()
            if result[0] == "ok":
                _, vec, duration, sr = result
                slots[i] = (IndexItem(f.relpath, f.category, duration, sr, f.size, f.mtime, digest), vec)
                partial.add(f.relpath, f.size, f.mtime, digest, duration, sr, vec)
                report.embedded += 1
            else:
                slots[i] = SkippedFile(f.relpath, f.size, f.mtime, result[1])
                partial.add(f.relpath, f.size, f.mtime, digest, reason=result[1])
            n_done += 1
            bar.n = n_done
            bar.refresh()
            if on_progress:
                on_progress(n_done, len(files), f.relpath)
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

    kept = [i for i, s in enumerate(slots) if isinstance(s, tuple)]
    items = [slots[i][0] for i in kept]
    vectors = [slots[i][1] for i in kept]
    report.skipped = [s for s in slots if isinstance(s, SkippedFile)]
    if old:
        report.removed = len(set(by_path) - {it.path for it in items})
    report.total = len(items)
    emb = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, encoder.dim), np.float32)
    write_index(index_dir, encoder=encoder.describe(), library_root=library, items=items,
                embeddings=emb, skipped=report.skipped, ann=ann, query_banks=encoder.query_banks(),
                penalties=_known_penalties(old, [old_rows.get(i) for i in kept]))
    partial.discard()
    return report
