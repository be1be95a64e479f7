"""Indexing survives interruption (SIGKILL, Cancel) without redoing work, and runs in parallel."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from qvi_app.app import build_index
from qvi_app.index import IndexingCancelled, ReferenceIndex
from qvi_app.index.progress_store import FILE_NAME
from qvi_app.index.store import current_generation
from qvi_app.paths import DEMO_LIBRARY, REPO_ROOT


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """120 real demo sounds (enough that indexing takes several seconds)."""
    root = tmp_path_factory.mktemp("resume") / "lib"
    for f in sorted(DEMO_LIBRARY.rglob("*.ogg"))[:120]:
        dest = root / f.relative_to(DEMO_LIBRARY)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    return root


@pytest.fixture(scope="module")
def uninterrupted(library, tmp_path_factory):
    ix = tmp_path_factory.mktemp("straight") / "ix"
    build_index(library, ix, show_progress=False, workers=1)
    return ReferenceIndex.open(ix)


def _same_index(a: ReferenceIndex, b: ReferenceIndex) -> None:
    assert [it.path for it in a.items] == [it.path for it in b.items]
    assert [(it.category, it.content_hash, it.sample_rate) for it in a.items] == \
        [(it.category, it.content_hash, it.sample_rate) for it in b.items]
    np.testing.assert_allclose(np.asarray(a.embeddings), np.asarray(b.embeddings), atol=1e-5)
    assert a.encoder_id == b.encoder_id


def _rows(db) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.2) as con:
            return con.execute("SELECT COUNT(*) FROM done").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_killed_indexing_resumes_to_the_same_index(library, uninterrupted, tmp_path):
    ix = tmp_path / "ix"
    proc = subprocess.Popen([sys.executable, "-m", "qvi_app", "index", str(library), "--index", str(ix),
                             "--workers", "1", "--quiet"], cwd=REPO_ROOT, env={**os.environ},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _rows(ix / FILE_NAME) < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "indexing finished before it could be interrupted: " + proc.stderr.read().decode()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = _rows(ix / FILE_NAME)
    assert 10 <= done_before < 120
    assert current_generation(ix) is None                       # no index was written by the killed run

    report = build_index(library, ix, show_progress=False, workers=1)
    assert report.resumed == done_before                          # nothing finished was embedded again
    assert report.embedded == 120 - done_before and report.total == 120
    assert "from an interrupted run" in report.summary()
    assert not (ix / FILE_NAME).exists()
    _same_index(ReferenceIndex.open(ix), uninterrupted)


@pytest.mark.slow
def test_cancelled_indexing_keeps_its_work_for_the_next_run(library, uninterrupted, tmp_path):
    ix = tmp_path / "ix"
    cancel = threading.Event()

    def progress(done, total, name):
        if done >= 15:
            cancel.set()

    with pytest.raises(IndexingCancelled, match="kept for the next run"):
        build_index(library, ix, show_progress=False, workers=1, on_progress=progress, cancel=cancel)
    report = build_index(library, ix, show_progress=False, workers=1)
    assert report.resumed >= 15 and report.resumed + report.embedded == 120
    _same_index(ReferenceIndex.open(ix), uninterrupted)


@pytest.mark.slow
def test_parallel_indexing_matches_one_process(library, uninterrupted, tmp_path):
    report = build_index(library, tmp_path / "ix", show_progress=False, workers=2)
    assert report.embedded == 120
    _same_index(ReferenceIndex.open(tmp_path / "ix"), uninterrupted)


def test_leftovers_of_another_model_are_not_reused(library, tmp_path):
    small = tmp_path / "small"
    for f in sorted(library.rglob("*.ogg"))[:3]:
        (small / f.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, small / f.parent.name / f.name)
    cancel = threading.Event()
    with pytest.raises(IndexingCancelled):
        build_index(small, tmp_path / "ix", "2dft", show_progress=False, workers=1, cancel=cancel,
                    on_progress=lambda *a: cancel.set())
    report = build_index(small, tmp_path / "ix", "cnn", show_progress=False, workers=1)
    assert report.resumed == 0 and report.embedded == 3


def test_an_update_that_finds_every_file_by_its_content_ends(library, uninterrupted, tmp_path):
    """Every file touched (a library copied, restored from a backup, checked out again): each is
    hashed, found by its content and kept, so no worker process ever starts. The update used to
    write the index and then never exit: the runtime's networks handed to the workers sat in a
    queue nobody read, and the interpreter waited at exit for the queue's thread to send them."""
    lib, ix = tmp_path / "lib", tmp_path / "ix"
    shutil.copytree(library, lib)
    shutil.copytree(uninterrupted.index_dir, ix)
    later = time.time() + 60
    for f in lib.rglob("*.ogg"):
        os.utime(f, (later, later))
    run = subprocess.run([sys.executable, "-m", "qvi_app", "index", str(lib), "--index", str(ix), "--workers", "2",
                          "--runtime", "onnx", "--quiet"], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert "0 embedded" in run.stdout + run.stderr, run.stdout + run.stderr
    _same_index(ReferenceIndex.open(ix), uninterrupted)
