"""Build or update an index from a library folder; only new or changed files are embedded."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from qvi_app.audio import load_audio
from qvi_app.encoders import Encoder
from qvi_app.errors import AudioError, QviError, StaleIndexError
from qvi_app.index.scan import scan_library
from qvi_app.index.ann import AnnSettings
from qvi_app.index.store import IndexItem, ReferenceIndex, SkippedFile, current_generation, write_index

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
    rebuilt_reason: str | None = None
    skipped: list[SkippedFile] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"indexed {self.total} sounds into {self.index_dir} "
                 f"({self.embedded} embedded, {self.reused} unchanged, {self.removed} removed, "
                 f"{len(self.skipped)} skipped)"]
        if self.rebuilt_reason:
            lines.insert(0, f"rebuilding from scratch: {self.rebuilt_reason}")
        lines += [f"  skipped {s.path}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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
                 ann: AnnSettings = AnnSettings()) -> BuildReport:
    """Bring ``index_dir`` up to date with ``library``; returns what was done.

    Files whose path, size and mtime are unchanged (or whose content hash matches an indexed
    file) keep their embedding; bad files are recorded with their reason and not retried
    until they change. ``cancel`` aborts without touching the live index.
    """
    library, index_dir = Path(library), Path(index_dir)
    report = BuildReport(index_dir)
    files = scan_library(library, categories_csv)
    old = _previous(index_dir, encoder, report)
    by_path = {it.path: (row, it) for row, it in enumerate(old.items)} if old else {}
    by_hash = {it.content_hash: row for row, it in enumerate(old.items)} if old else {}
    old_skips = {s.path: s for s in old.skipped} if old else {}

    items: list[IndexItem] = []
    vectors: list[np.ndarray] = []
    bar = tqdm(files, desc="indexing", unit="file", disable=not show_progress, leave=False)
    for n, f in enumerate(bar):
        if cancel is not None and cancel.is_set():
            raise IndexingCancelled("indexing cancelled; the previous index is unchanged")
        if on_progress:
            on_progress(n, len(files), f.relpath)
        prev = by_path.get(f.relpath)
        if prev and prev[1].size == f.size and prev[1].mtime == f.mtime:
            row, it = prev
            items.append(IndexItem(f.relpath, f.category, it.duration, it.sample_rate, f.size, f.mtime, it.content_hash))
            vectors.append(old.embeddings[row])
            report.reused += 1
            continue
        skip = old_skips.get(f.relpath)
        if skip and skip.size == f.size and skip.mtime == f.mtime:
            report.skipped.append(skip)
            continue
        path = library / f.relpath
        try:
            digest = file_sha256(path)
            if digest in by_hash:
                it = old.items[by_hash[digest]]
                items.append(IndexItem(f.relpath, f.category, it.duration, it.sample_rate, f.size, f.mtime, digest))
                vectors.append(old.embeddings[by_hash[digest]])
                report.reused += 1
                continue
            wave, sr = load_audio(path)
            vectors.append(encoder.embed(wave, sr))
        except AudioError as exc:
            report.skipped.append(SkippedFile(f.relpath, f.size, f.mtime, exc.reason))
            continue
        except OSError as exc:
            report.skipped.append(SkippedFile(f.relpath, f.size, f.mtime, f"cannot read ({exc.strerror or exc})"))
            continue
        except (ValueError, RuntimeError) as exc:
            report.skipped.append(SkippedFile(f.relpath, f.size, f.mtime, f"cannot embed ({exc})"))
            continue
        items.append(IndexItem(f.relpath, f.category, len(wave) / sr, sr, f.size, f.mtime, digest))
        report.embedded += 1
    bar.close()
    if on_progress:
        on_progress(len(files), len(files), "")
    if old:
        report.removed = len(set(by_path) - {it.path for it in items})
    report.total = len(items)
    emb = np.stack(vectors) if vectors else np.zeros((0, encoder.dim), np.float32)
    write_index(index_dir, encoder=encoder.describe(), library_root=library, items=items,
                embeddings=emb, skipped=report.skipped, ann=ann)
    return report
