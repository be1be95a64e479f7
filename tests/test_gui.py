"""The real window on a virtual screen with a virtual sound card (Xvfb + PulseAudio null sink).

A demo sound is played into the "microphone" while the window records; input is real X events
(xdotool) where it matters: the Record key, clicking a result, the rating keys.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from qvi_app.audio import load_audio
from qvi_app.paths import DEMO_INDEX, DEMO_LIBRARY, REPO_ROOT
from qvi_app.settings import AppSettings

OUTPUT = Path(__file__).parent / "output"
REFERENCE = "birds/peacock_call_01.ogg"
pytestmark = pytest.mark.slow          # a real screen and sound card: outside the fast tier


def pump(root, cond, timeout=60.0, what="the window"):
    """Run the Tk event loop until ``cond()`` holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        root.update()
        if cond():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def screenshot(root, toplevel, desktop, name: str):
    """``toplevel`` as it is on the virtual screen, saved to tests/output/``name`` (the README's
    pictures in docs/ are copies of these). Returns the image."""
    OUTPUT.mkdir(exist_ok=True)
    from PIL import ImageGrab

    xdo(root, desktop, "mousemove", "0", "0")             # the pointer off the window: no tooltip
    wait(root, 0.5)
    top = int(toplevel.wm_geometry().rsplit("+", 1)[1])  # the frame's top, above the menu bar
    box = (toplevel.winfo_rootx(), top, toplevel.winfo_rootx() + toplevel.winfo_width(),
           toplevel.winfo_rooty() + toplevel.winfo_height())
    shot = ImageGrab.grab(bbox=box, xdisplay=desktop.display)
    shot.save(OUTPUT / name)
    return shot


def wait(root, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        root.update()
        time.sleep(0.01)


def xdo(root, desktop, *args):
    """Run xdotool against the virtual screen while the window keeps handling events."""
    p = subprocess.Popen(["xdotool", *args], env=desktop.env)
    pump(root, lambda: p.poll() is not None, 10, f"xdotool {args}")
    assert p.returncode == 0, f"xdotool {args} failed"


def click(root, desktop, widget, x, y):
    xdo(root, desktop, "mousemove", str(widget.winfo_rootx() + x), str(widget.winfo_rooty() + y),
        "click", "1")


def press(root, desktop, win, key):
    """A real key press, with the pointer over the results (X gives focus to the window under it)."""
    tree = win.results.tree
    xdo(root, desktop, "mousemove", str(tree.winfo_rootx() + 150), str(tree.winfo_rooty() + 300))
    xdo(root, desktop, "key", key)


def as_wav(rel: str, tmp_path: Path) -> Path:
    wave, sr = load_audio(DEMO_LIBRARY / rel)
    out = tmp_path / (Path(rel).stem + ".wav")
    sf.write(out, wave, sr)
    return out


def rms_db(x: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x))) + 1e-12))


def feedback_rows(data_dir: Path) -> list[tuple]:
    con = sqlite3.connect(data_dir / "feedback.sqlite")
    try:
        return con.execute("SELECT result_path, rank, rating, category_filter, model_id, query_path "
                           "FROM ratings ORDER BY id").fetchall()
    finally:
        con.close()


def test_record_rank_filter_audition_rate(window, desktop, tmp_path, data_dir, monkeypatch):
    root, open_window = window
    win = open_window()
    assert win.session.index_dir == DEMO_INDEX and "604 sounds" in win.message

    # Record: Space starts, a demo sound is played into the microphone, Space stops.
    press(root, desktop, win, "space")
    pump(root, lambda: win.recorder is not None and win.recorder.recording, 10, "recording to start")
    player = desktop.play_into_microphone(as_wav(REFERENCE, tmp_path))
    pump(root, lambda: player.poll() is not None, 30, "the imitation to play")
    wait(root, 0.3)
    assert win.meter.level_db > -60 or "left" in win.countdown.cget("text")
    press(root, desktop, win, "space")
    pump(root, lambda: win.result is not None, 30, "the search")
    rows = win.results.row_values()
    assert len(rows) == 20 and rows[0]["name"] == Path(REFERENCE).name and rows[0]["rank"] == "1"
    assert "last query" in win.message and str(win.session.library_root) in win.message
    assert win.spectrograms.titles["query"].startswith("Query: your recording")
    win.replay_button.invoke()
    assert win.player.playing
    win.stop_playing()

    # Category: the list is re-ranked at once, only birds, without recording again.
    birds = next(v for v in win.category_box["values"] if v.startswith("birds "))
    win.category_var.set(birds)
    win.category_box.event_generate("<<ComboboxSelected>>")
    pump(root, lambda: win.result.filters.category == "birds", 5, "the filter")
    rows = win.results.row_values()
    assert rows and {r["category"] for r in rows} == {"birds"} and rows[0]["name"] == Path(REFERENCE).name

    # Click the second result: it is played to the sound card and marked while it plays.
    capture = desktop.record_output(tmp_path / "played.wav")
    wait(root, 0.5)
    tree = win.results.tree
    x, y, _w, h = tree.bbox("1")
    click(root, desktop, tree, x + 150, y + h // 2)
    pump(root, lambda: win.playing is not None, 10, "playback to start")
    second = win.playing
    assert second.rank == 2 and win.results.row_values()[1]["play"] == "▶"
    pump(root, lambda: win.playing is None, 20, "playback to end")
    wait(root, 0.3)
    capture.terminate()
    capture.wait(5)
    heard, _ = sf.read(tmp_path / "played.wav")
    ref, _ = load_audio(second.path)
    assert rms_db(heard) > rms_db(ref) - 20, "the clicked sound did not reach the output device"
    loud = np.flatnonzero(np.abs(heard).max(axis=-1) > 0.01 * np.abs(ref).max())
    assert abs((loud[-1] - loud[0]) / 44100 - second.duration) < 0.5

    # Thumbs up on the best match with the + key, then change it to thumbs down.
    tree.selection_set("0")
    pump(root, lambda: win.results.selected().rank == 1, 5)
    press(root, desktop, win, "plus")
    pump(root, lambda: len(feedback_rows(data_dir)) == 1, 5, "the rating to be written")
    (path, rank, rating, category, model_id, query_path), = feedback_rows(data_dir)
    assert (Path(path).name, rank, rating, category, model_id) == (
        Path(REFERENCE).name, 1, 1, "birds", win.session.model_id)
    assert sf.info(query_path).duration > 0.5 and win.results.row_values()[0]["rating"] == "▲ up"
    press(root, desktop, win, "minus")
    pump(root, lambda: feedback_rows(data_dir)[0][2] == -1, 5, "the rating to change")
    assert len(feedback_rows(data_dir)) == 1

    # File > Export feedback as CSV (the save dialog answered with a path).
    from tkinter import filedialog

    exported = tmp_path / "feedback.csv"
    monkeypatch.setattr(filedialog, "asksaveasfilename", lambda **kw: str(exported))
    win.export_feedback_dialog()
    lines = exported.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("timestamp,") and ",-1,birds," in lines[1]

    # The screenshot the README shows.
    shot = screenshot(root, root, desktop, "main_window.png")
    assert shot.size[0] == root.winfo_width() and len(shot.getcolors(1 << 24)) > 100


def test_silent_recording_and_unknown_microphone_are_explained(window, desktop):
    root, open_window = window
    win = open_window()
    win.toggle_record()
    pump(root, lambda: win.recorder is not None and win.recorder.recording, 10)
    wait(root, 0.6)
    win.toggle_record()
    pump(root, lambda: win.banner.text, 20, "a message")
    assert "silent" in win.banner.text and win.result is None

    win.settings.input_device = "no-such-microphone"
    win.toggle_record()
    assert win.recorder is None
    assert "Cannot record" in win.banner.text and "no-such-microphone" in win.banner.text


def test_open_folder_shows_progress_and_is_remembered_and_missing_file_is_explained(window, small_library):
    root, open_window = window
    win = open_window()
    ticks = iter(range(10**6))
    win.bench.clock = lambda: float(next(ticks))                           # a second a file: a pace to show
    win.index_folder(small_library)
    progress, said = [], set()
    pump(root, lambda: progress.append(float(win.index_progress["value"])) or said.add(win.message)
         or win.session.library_root == small_library.resolve(), 120, "the folder to be indexed")
    assert len(win.session.index) == 24 and max(progress) >= 1
    assert any(m.startswith("indexing ") and "/24 · about " in m and " left: " in m for m in said), said
    assert AppSettings.load().index_dir == str(win.session.index_dir)

    win.open_query(small_library / sorted(p.relative_to(small_library) for p in small_library.rglob("*.ogg"))[0])
    pump(root, lambda: win.result is not None, 30, "the search")
    victim = win.result.hits[1]
    victim.path.unlink()
    win.results.tree.selection_set("1")
    pump(root, lambda: win.banner.text, 10, "a message")
    assert "no longer in the library folder" in win.banner.text and win.playing is None


def test_cancelled_indexing_keeps_the_open_library(window, small_library):
    root, open_window = window
    win = open_window()
    win.index_folder(small_library)
    pump(root, lambda: float(win.index_progress["value"]) >= 2, 60, "indexing to start")
    win.index_cancel.invoke()
    pump(root, lambda: "cancelled" in win.message, 30, "the cancellation")
    assert win.session.index_dir == DEMO_INDEX and not win.index_progress.winfo_ismapped()


def test_stale_index_offers_a_rebuild(window, small_library, tmp_path):
    from qvi_app.app import build_index
    from qvi_app.index.store import current_generation

    root, open_window = window
    index_dir = tmp_path / "ix"
    build_index(small_library, index_dir, show_progress=False)
    con = sqlite3.connect(current_generation(index_dir) / "meta.sqlite")
    with con:
        con.execute("UPDATE meta SET value = 'cnn/older-model/0123456789' WHERE key = 'encoder_id'")
    con.close()

    win = open_window(index_dir=index_dir)
    assert win.session is None and "another model version" in win.banner.text
    win.banner.action.invoke()
    pump(root, lambda: win.session is not None, 120, "the rebuild")
    assert len(win.session.index) == 24 and win.session.index.encoder_id == win.session.model_id


def test_unwritable_data_directory_is_explained(window, tmp_path, monkeypatch):
    root, open_window = window
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data directory should be")
    monkeypatch.setenv("QVI_DATA_DIR", str(blocker / "qvi"))
    win = open_window()
    win.open_query(DEMO_LIBRARY / REFERENCE)
    pump(root, lambda: win.result is not None, 30, "the search")
    win.rate_selected(1)
    assert "could not be saved" in win.banner.text and str(blocker) in win.banner.text


def test_killing_the_app_loses_no_rating(desktop, tmp_path):
    """The real program (main.py), driven by X key presses, killed with SIGKILL mid-session."""
    data = tmp_path / "data"
    env = {**desktop.env, "QVI_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"}
    app = subprocess.Popen([sys.executable, str(REPO_ROOT / "main.py"), str(DEMO_LIBRARY / REFERENCE)], env=env,
                           stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in app.stderr:
            lines.append(line)
            if "ranked" in line:
                break
        assert any("ranked 20 results" in x for x in lines), "".join(lines)
        os.set_blocking(app.stderr.fileno(), False)
        win_id = subprocess.run(["xdotool", "search", "--sync", "--name", "^qvi"], env=desktop.env,
                                capture_output=True, text=True, timeout=20).stdout.split()[0]
        geometry = subprocess.run(["xdotool", "getwindowgeometry", win_id], env=desktop.env, capture_output=True,
                                  text=True).stdout
        x, y = (int(v) for v in geometry.split("Position: ")[1].split()[0].split(","))
        subprocess.run(["xdotool", "mousemove", str(x + 300), str(y + 300)], env=desktop.env, check=True)

        def rows():
            return feedback_rows(data) if (data / "feedback.sqlite").exists() else []

        def until(cond):
            end = time.monotonic() + 15
            while time.monotonic() < end and not cond():
                time.sleep(0.05)
            return cond()

        subprocess.run(["xdotool", "key", "plus"], env=desktop.env, check=True)
        assert until(lambda: len(rows()) == 1), "the first rating never reached the database"
        subprocess.run(["xdotool", "key", "Down", "minus"], env=desktop.env, check=True)
        assert until(lambda: len(rows()) == 2), f"the second rating never reached the database: {rows()}"
        app.send_signal(signal.SIGKILL)
        app.wait(10)
    finally:
        if app.poll() is None:
            app.kill()
    got = [(Path(p).name, rank, rating) for p, rank, rating, *_ in feedback_rows(data)]
    assert got[0] == (Path(REFERENCE).name, 1, 1) and got[1][1:] == (2, -1)
    con = sqlite3.connect(data / "feedback.sqlite")
    assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    con.close()
