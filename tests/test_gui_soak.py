"""Random actions on a real window, as an impatient user makes them: a query opened while the
last one ranks, Back while More like this ranks, a rating on a list being replaced, filters
changed under a search, J and Z on whatever is selected. Nothing may reach Tk's error handler
or make the window say "Something went wrong" (such a run found RELIABILITY.md row 25).

Seeded: the same actions in the same order each run; what the worker threads finish between
them varies, which is the point."""

from __future__ import annotations

import random
import time

import pytest

from qvi_app.audio import load_audio
from qvi_app.index import LENGTH_PRESETS
from qvi_app.paths import DEMO_LIBRARY
from test_gui import pump, wait
from tests.conftest import write_encoded

pytestmark = pytest.mark.slow

NAMES = ["", "01", "bird", "-bird", '"', "zz", "door wood", "02 -owl", "-", '"bird']
LENGTHS = ["Any length", "0.2-0.5", "2-", "x", *[p.describe() for p in LENGTH_PRESETS]]


def _actions(win, rng, memos):
    root = win.root
    queries = sorted(DEMO_LIBRARY.rglob("*.ogg"))[::20]

    def select():
        n = len(win.results.tree.get_children())
        if n:
            row = str(rng.randrange(n))
            win.results.tree.selection_set(row)
            win.results.tree.focus(row)
            win.results.tree.event_generate("<<TreeviewSelect>>")

    def key(sequence):
        win.results.tree.focus_set()
        root.event_generate(sequence, when="tail")

    def category():
        win.category_var.set(rng.choice(list(win.category_box["values"])))
        win.category_box.event_generate("<<ComboboxSelected>>")

    def length():
        win.filter_row.length_var.set(rng.choice(LENGTHS))
        win.filter_row._length_chosen()

    def top():
        win.top_var.set(rng.choice(["1", "5", "20", "1000", "abc", "0"]))
        win.rerank()

    return {
        "query": lambda: win.open_query(rng.choice(queries)), "memo": lambda: win.open_query(rng.choice(memos)),
        "select": select, "select again": select,
        "rate": lambda: win.rate_selected(rng.choice([1, -1])), "more like": win.more_like_selected,
        "back": win.back, "forward": win.forward, "original": win.original_ranking, "category": category,
        "name": lambda: win.filter_row.name_var.set(rng.choice(NAMES)), "length": length, "top": top,
        "match": win.play_match, "zoom": win.zoom, "pitch": lambda: win.change_pitch(rng.choice([1, -1, 0])),
        "loop": win.switch_loop, "play": win.play_selected, "stop": win.stop_playing, "query again": win.replay_query,
        "part": lambda: win.search_part(rng.uniform(0, 1), rng.uniform(0, 2)), "clear": win.clear_filters,
        "all": win.results.select_all, "copy": win.copy_selected_path,
        "play from": lambda: win.play_selected_from(rng.uniform(-1, 20)),
        "Space": lambda: key("<space>"), "↓": lambda: key("<Down>"), "↑": lambda: key("<Up>"), "M": lambda: key("<m>"),
        "J": lambda: key("<j>"), "+": lambda: key("<plus>"), "-": lambda: key("<minus>"), "Esc": lambda: key("<Escape>"),
        "Alt+←": lambda: key("<Alt-Left>"), "Alt+→": lambda: key("<Alt-Right>"),
    }


@pytest.mark.parametrize("seed", [3, 11])
def test_random_actions_never_end_in_an_error(window, desktop, seed, tmp_path):
    root, open_window = window
    win = open_window()
    sounds = sorted(DEMO_LIBRARY.rglob("*.ogg"))
    memos = [write_encoded(tmp_path / "memo.m4a", *load_audio(sounds[7])),          # a phone's, a video's
             write_encoded(tmp_path / "clip.mov", *load_audio(sounds[300], stereo=True), container="mov")]
    caught = []
    handler = root.report_callback_exception
    root.report_callback_exception = lambda *exc: (caught.append((done[-1:], exc[1])), handler(*exc))
    rng = random.Random(seed)
    actions = _actions(win, rng, memos)
    names = sorted(actions)
    done: list[str] = []
    for _ in range(150):
        done.append(rng.choice(names))
        actions[done[-1]]()
        wait(root, rng.choice([0.02, 0.1, 0.3, 0.6]))
        said = f"{win.message} {win.banner.text or ''}"
        assert "went wrong" not in said.lower(), (done[-6:], said)
    if win.recorder is not None:                              # Space left it recording: stopped
        win.toggle_record()
    pump(root, lambda: win.tasks.busy == 0, 30, "the last work to end")
    time.sleep(0.2)
    wait(root, 0.3)
    assert not caught, caught
    assert "went wrong" not in f"{win.message} {win.banner.text or ''}".lower(), win.message
