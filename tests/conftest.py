"""Shared fixtures: a private data directory, real audio files, a small real library."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qvi_app.paths import DEMO_INDEX, DEMO_LIBRARY

SR = 22050


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    """Every test gets its own QVI_DATA_DIR; nothing touches the user's real data."""
    d = tmp_path / "qvi-data"
    monkeypatch.setenv("QVI_DATA_DIR", str(d))
    return d


def tone(freq: float, seconds: float = 1.0, sr: int = SR, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write(path: Path, wave: np.ndarray, sr: int = SR, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave, sr, **kw)
    return path


def write_encoded(path: Path, wave: np.ndarray, sr: int = SR, container: str = "mp4", codec: str = "aac",
                  tags: dict | None = None, bit_rate: int | None = None) -> Path:
    """``wave`` (frames, or frames x channels) encoded by FFmpeg (PyAV) as a phone or a video
    editor writes it: AAC in an M4A file by default, with ``tags`` (title, comment...)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    planar = np.ascontiguousarray(np.atleast_2d(np.asarray(wave, np.float32).T))      # (channels, frames)
    layout = {1: "mono", 2: "stereo"}[len(planar)]
    with av.open(str(path), "w", format=container) as out:
        out.metadata.update(tags or {})
        stream = out.add_stream(codec, rate=sr, layout=layout)
        if bit_rate:
            stream.bit_rate = bit_rate                       # WMA's encoder wants one
        to_codec = av.AudioResampler(format=stream.codec_context.format.name, layout=layout, rate=sr)
        frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=layout)
        frame.sample_rate = sr
        for converted in [*to_codec.resample(frame), *to_codec.resample(None)]:
            out.mux(stream.encode(converted))
        out.mux(stream.encode(None))
    return path


@pytest.fixture(scope="session")
def demo_items():
    """(relpath, category) of the bundled demo library, from its bundled index."""
    from qvi_app.index import ReferenceIndex

    return [(it.path, it.category) for it in ReferenceIndex.open(DEMO_INDEX).items]


@pytest.fixture
def small_library(tmp_path, demo_items) -> Path:
    """A copy of 3 clips from each of 8 demo categories (24 real recordings)."""
    root = tmp_path / "library"
    by_cat: dict[str, list[str]] = {}
    for rel, cat in demo_items:
        by_cat.setdefault(cat, []).append(rel)
    for cat in sorted(by_cat)[:8]:
        for rel in by_cat[cat][:3]:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(DEMO_LIBRARY / rel, root / rel)
    return root


@pytest.fixture(scope="session")
def desktop():
    """A virtual screen and sound card for this test session (see tests/desktop.py)."""
    import os
    import sys

    from tests.desktop import start_desktop

    d = start_desktop()
    saved = {k: os.environ.get(k) for k in ("DISPLAY", "XDG_RUNTIME_DIR")}
    os.environ.update(DISPLAY=d.display, XDG_RUNTIME_DIR=d.env["XDG_RUNTIME_DIR"])
    if "sounddevice" in sys.modules:  # PortAudio lists devices when it starts: restart it to see the sink
        sd = sys.modules["sounddevice"]
        sd._terminate()
        sd._initialize()
    yield d
    d.stop()
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def window(desktop):
    import gc
    import tkinter as tk

    from qvi_app.gui.window import QviWindow
    from qvi_app.settings import AppSettings
    from tests.test_gui import pump

    root = tk.Tk()
    windows = []

    def open_window(**kw):
        win = QviWindow(root, AppSettings(), **kw)
        windows.append(win)
        pump(root, lambda: win.session is not None or win.banner.text, what="the library to open")
        return win

    yield root, open_window
    for w in windows:
        w.player.stop()
    root.destroy()
    # Collect this test's Tk objects now, on the main thread: collected later by a worker thread
    # of another test, a Tk image's __del__ fails with "main thread is not in main loop".
    gc.collect()
