"""The qvi window: record an imitation, see the ranked sounds, audition, filter, rate.

Wiring only: what the window knows and decides is a :class:`~qvi_app.workbench.Workbench`
and what it plays an :class:`~qvi_app.audition.Audition` (both tk-free, tested without a
display); this module lays out widgets, runs the workbench's
blocking calls in worker threads (:class:`~qvi_app.gui.tasks.TaskRunner`) and draws what they
return. Audio analysis happens in :mod:`qvi_app.app`, reached through the workbench. Two ideas
of the window live beside it, as mixins of the one window object its menus, keys and tests see:
the library (``libraries.py``: opening, indexing, the Libraries menu) and the selected result
(``shown_result.py``: its plots, hearing it, where it matches, its parts).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
import tkinter as tk
from pathlib import Path
from tkinter import filedialog, messagebox, ttk

import numpy as np

from qvi_app import __version__, app
from qvi_app.audio.devices import Player, Recorder, list_devices
from qvi_app.audio.endpoint import QUIET_S
from qvi_app.audio.load import formats_read
from qvi_app.audition import Audition
from qvi_app.errors import QviError, counted, sentence
from qvi_app.gui.dialogs import DEFAULT_DEVICE, ask_devices, ask_folder, show_lines
from qvi_app.gui.filter_row import FilterRow, choice_of, counted_choices, shown_choice
from qvi_app.gui.libraries import LibraryMixin
from qvi_app.gui.menus import KEYS, bind_keys, build_menu, is_text_field
from qvi_app.gui.screen import fit_to_screen
from qvi_app.gui.shown_result import ShownResultMixin
from qvi_app.gui.tasks import TaskRunner
from qvi_app.gui.widgets import FirstRun, LevelMeter, MessageBanner, ResultsTable, SpectrogramPanel, ui_scale
from qvi_app.index import NO_FILTERS, Filters
from qvi_app.settings import AppSettings, feedback_db_path
from qvi_app.workbench import RECORDING_LABEL, Workbench

log = logging.getLogger("qvi.gui")
ALL = "All categories"


class QviWindow(LibraryMixin, ShownResultMixin):
    def __init__(self, root: tk.Tk, settings: AppSettings | None = None, index_dir=None, query_file=None):
        self.root = root
        self.bench = Workbench(settings or AppSettings.load(), feedback_db_path())
        self.tasks = TaskRunner(root)
        self.recorder: Recorder | None = None
        #: What is heard: the result playing, the pitch results play at (tk-free, audition.py).
        self.audition = Audition(self.settings, lambda ticket: self.tasks.post(self._play_ended, ticket))
        self._search_token = 0
        self._learning = False                  # an adapter is being learned (one at a time)
        self._init_library()
        self._init_shown_result()
        self._nothing_note = ""                       # the banner's line for a list its filters emptied
        self._facets_shown: Filters | None = None     # the filters the boxes' counts are for

        root.title("qvi — find sounds by imitating them")
        fit_to_screen(root, self.settings.window_size)
        root.report_callback_exception = self._report_exception
        self._style()
        build_menu(self)
        self._build_layout()
        bind_keys(self)
        self._enable_drops()
        root.protocol("WM_DELETE_WINDOW", self.close)
        self.open_library(Path(index_dir) if index_dir else self._remembered_index(), then_query=query_file)

    # -- the workbench's state, as the window and its tests read it --------------------------------
    @property
    def settings(self) -> AppSettings:
        return self.bench.settings

    @property
    def session(self) -> app.QviSession | None:
        return self.bench.session

    @property
    def result(self) -> app.SearchResult | None:
        return self.bench.result

    @property
    def player(self) -> Player:
        return self.audition.player

    @property
    def playing(self) -> app.SearchHit | None:
        return self.audition.playing

    @property
    def pitch(self) -> int:
        return self.audition.pitch

    @property
    def query(self):
        q = self.bench.query
        return (q.wave, q.sr) if q else None

    # -- layout ------------------------------------------------------------------------------------
    def px(self, pixels: float) -> int:
        """A size in pixels at 96 dpi, on this screen (twice as many at 192 dpi)."""
        return round(pixels * ui_scale(self.root))

    def _style(self):
        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Banner.TFrame", background="#fce8e6")
        style.configure("Banner.TLabel", background="#fce8e6", foreground="#a50e0e")
        style.configure("Banner.TButton", padding=(4, 0))
        style.configure("Note.TFrame", background="#e8f0fe")
        style.configure("Note.TLabel", background="#e8f0fe", foreground="#174ea6")
        style.configure("Record.TButton", font=("TkDefaultFont", 11, "bold"), padding=(12, 6))
        style.configure("Status.TLabel", foreground="#5f6368")
        style.configure("Small.TButton", padding=(2, 2), width=-1)
        style.configure("Treeview", rowheight=self.px(22))

    def _build_layout(self):
        root = self.root
        top = self.top_bar = ttk.Frame(root, padding=(10, 8))
        top.grid(row=0, column=0, sticky="ew")
        self.record_button = ttk.Button(top, text="● Record", style="Record.TButton", width=10,
                                        command=self.toggle_record, takefocus=False)
        self.record_button.pack(side="left")
        meter_box = ttk.Frame(top)
        meter_box.pack(side="left", padx=10)
        self.meter = LevelMeter(meter_box)
        self.meter.pack()
        self.countdown = ttk.Label(meter_box, text="press Space to record", style="Status.TLabel")
        self.countdown.pack(anchor="w")
        self.replay_button = ttk.Button(top, text="▶ Query", command=self.replay_query, state="disabled",
                                        takefocus=False)
        self.replay_button.pack(side="left", padx=(0, 12))
        ttk.Label(top, text="Category").pack(side="left")
        self.category_var = tk.StringVar(value=ALL)
        self.category_box = ttk.Combobox(top, textvariable=self.category_var, state="readonly", width=20)
        self.category_box.pack(side="left", padx=(4, 12))
        self.category_box.bind("<<ComboboxSelected>>", lambda e: self.rerank())
        ttk.Label(top, text="Show").pack(side="left")
        self.top_var = tk.IntVar(value=self.settings.top_n)
        self.top_box = ttk.Spinbox(top, from_=5, to=200, increment=5, width=5, textvariable=self.top_var,
                                   command=self.rerank)
        self.top_box.pack(side="left", padx=4)
        self.top_box.bind("<Return>", lambda e: self.rerank())
        ttk.Label(top, text="results").pack(side="left")
        self.busy = ttk.Progressbar(top, mode="indeterminate", length=self.px(90))   # shown while working

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.grid(row=1, column=0, sticky="nsew", padx=10, pady=(4, 4))
        # The message line sits under the list: when it appears the list gets shorter, but no row
        # moves (above it, the list jumped 46 px and the next click landed on another row).
        self.banner = MessageBanner(root)
        self.banner.grid(row=2, column=0, sticky="ew", padx=10)
        self.banner.hide()
        left = ttk.Frame(panes)
        actions = self.actions = ttk.Frame(left, padding=(0, 6, 0, 0))
        actions.pack(side="bottom", fill="x")          # packed first: a small window shrinks the list, not these
        self.filter_row = FilterRow(left, self.tasks, prepare_name=lambda words: self.bench.prepare_name(words),
                                    prepare_length=lambda: self.bench.prepare_length(), on_change=self.rerank,
                                    on_error=self.error, on_failed=self._search_failed,
                                    give_keys_back=lambda: self.results.tree.focus_set())
        self.filter_row.pack(side="top", fill="x")
        self.list_area = ttk.Frame(left)
        self.list_area.pack(fill="both", expand=True)
        self.results = ResultsTable(self.list_area)
        self.first_run = FirstRun(self.list_area)
        self.first_run.pack(fill="both", expand=True)
        self.play_button = ttk.Button(actions, text="▶ Play", style="Small.TButton", command=self.play_selected)
        self.stop_button = ttk.Button(actions, text="■ Stop", style="Small.TButton", command=self.stop_playing)
        self.up_button = ttk.Button(actions, text="▲ Good", style="Small.TButton", command=lambda: self.rate_selected(1))
        self.down_button = ttk.Button(actions, text="▼ Poor", style="Small.TButton",
                                      command=lambda: self.rate_selected(-1))
        self.like_button = ttk.Button(actions, text="≈ Similar", style="Small.TButton",
                                      command=self.more_like_selected)
        self.copy_button = ttk.Button(actions, text="Copy path", style="Small.TButton", command=self.copy_selected_path)
        self.original_button = ttk.Button(actions, text="↺ Original", style="Small.TButton",
                                          command=self.original_ranking)
        for b in (self.play_button, self.stop_button, self.up_button, self.down_button, self.like_button,
                  self.copy_button):
            b.pack(side="left", padx=(0, 4))
        self.volume_var = tk.DoubleVar(value=100 * self.settings.volume)
        self.volume = ttk.Scale(actions, from_=0, to=100, variable=self.volume_var, length=self.px(70),
                                command=lambda v: self.audition.set_volume(float(v)))
        self.volume.pack(side="right")
        ttk.Label(actions, text="Volume", style="Status.TLabel").pack(side="right", padx=(8, 2))
        panes.add(left, weight=3)
        self.spectrograms = SpectrogramPanel(panes, on_seek=self.play_selected_from, on_select_query=self.search_part,
                                             on_select_part=self.play_part)
        panes.add(self.spectrograms, weight=2)

        bottom = ttk.Frame(root, padding=(10, 2, 10, 6))
        bottom.grid(row=3, column=0, sticky="ew")
        self.status = ttk.Label(bottom, text="loading…", style="Status.TLabel")
        self.status.pack(side="left", fill="x", expand=True)
        self.index_progress = ttk.Progressbar(bottom, mode="determinate", length=self.px(220))
        self.index_cancel = ttk.Button(bottom, text="Cancel", command=self.cancel_indexing)
        self.message = ""  # the latest status or error text, for tests and screen readers
        root.columnconfigure(0, weight=1)
        root.rowconfigure(1, weight=1)
        self.panes = panes
        panes.bind("<Configure>", self._place_sash, add="+")

        tree = self.results.tree
        tree.bind("<<TreeviewSelect>>", self._on_select)
        tree.bind("<Return>", lambda e: self.play_selected())
        tree.bind("<Double-1>", lambda e: self.copy_selected_path())
        tree.bind("<Button-3>", self._context_menu)

    def _place_sash(self, event) -> None:
        """Once the panes have a real width: the list 55% (at least 520 px), the plots the rest;
        then, and whenever the window is resized, the list keeps the room its columns need."""
        if event.width <= 400:
            return
        if not getattr(self, "_sash_placed", False):
            self._sash_placed = True
            at = self.settings.list_width or max(self.px(520), int(event.width * 0.55))
            self.root.after_idle(lambda: self.panes.sashpos(0, min(at, event.width - self.px(240))))
        self.root.after_idle(self._give_list_room)

    def _give_list_room(self) -> None:
        """The sash moved right until every column of the list is whole, the plots keeping 240 px.
        Needed when the window narrows (shared by the panes' weights, the list got 447 px of 840 at
        the minimum size) and when a wider category comes in: the Rating column was cut off. The
        buttons under the list too: at 1024 px ↺ Original had no room left, and was not shown."""
        width = self.panes.winfo_width()
        need = max(self.results.needed_width(), self.actions.winfo_reqwidth())   # and the buttons under it
        if width > 400 and self.panes.sashpos(0) < need:
            self.panes.sashpos(0, min(need, width - self.px(240)))

    def step_list(self, event, step: int):
        """Up/Down move in the list wherever the keyboard focus is: the plots take it (matplotlib
        focuses its canvas when made and when clicked), and then the arrows did nothing at all."""
        if event.widget is self.results.tree or is_text_field(event.widget):
            return None                          # the list's own binding, or a field's
        self.results.step(step)
        self.results.tree.focus_set()
        return "break"

    def _typing(self) -> bool:
        try:
            return is_text_field(self.root.focus_get())
        except (KeyError, tk.TclError):           # focus in a dialog's internals, or none
            return False

    def _enable_drops(self) -> None:
        """Drop a sound file on the window to search with it; drag a result out to a file manager,
        an editor or a DAW (tkinterdnd2; without it, the window works without drag and drop)."""
        try:
            from tkinterdnd2 import COPY, DND_FILES, TkinterDnD

            TkinterDnD._require(self.root)
        except Exception as exc:  # noqa: BLE001 - not installed, or its Tk extension cannot load here
            log.info("drag and drop unavailable (%s)", exc)
            self.dnd = False
            return
        self.dnd = True
        for widget in (self.results.tree, self.first_run, self.spectrograms.canvas.get_tk_widget(), self.top_bar):
            widget.drop_target_register(DND_FILES)
            widget.dnd_bind("<<Drop>>", lambda e: self.dropped(self.root.tk.splitlist(e.data)))
        tree = self.results.tree
        tree.drag_source_register(1, DND_FILES)
        tree.dnd_bind("<<DragInitCmd>>", lambda e: (COPY, DND_FILES, self._drag_paths()))
        handle = self.spectrograms.part_handle
        handle.drag_source_register(1, DND_FILES)
        handle.dnd_bind("<<DragInitCmd>>", lambda e: (COPY, DND_FILES, self._drag_part()))

    def _drag_paths(self):
        return tuple(str(h.path) for h in self.results.selected_all())

    def dropped(self, paths) -> None:
        """A sound dropped on the window is searched for; a folder becomes the library (indexed or
        brought up to date first, as File → Open library folder does)."""
        sounds = [Path(p) for p in paths if Path(p).suffix.lower() in app.AUDIO_EXTENSIONS]
        folders = [Path(p) for p in paths if Path(p).is_dir()]
        if sounds:
            self.open_query(sounds[0])
        elif folders:
            self.use_folder(folders[0])
        elif paths:
            first = Path(paths[0])
            why = app.unread_format(first)
            self.error(f"{first.name}: {why}" if why else
                       f"{first.name} is not a sound file qvi reads ({', '.join(sorted(app.AUDIO_EXTENSIONS))})")

    # -- messages -------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.message = text
        self.status.configure(text=text)
        log.info(text)

    def error(self, text: str, action_text: str | None = None, action=None) -> None:
        self.message = text
        self.bench.tell(text, error=True, action=action_text)
        self.banner.show(text, action_text, action)
        log.warning(text)

    def _show_notice(self) -> None:
        """The workbench's message in the banner: shown, or gone after a success."""
        n = self.bench.notice
        if n is None:
            self.banner.hide()
            return
        if not n.error:
            self.message = n.text
            self.banner.show(n.text, note=True)
            return
        action = None
        if n.action == "Show skipped files":
            action = lambda: self._show_details("Files left out of the library", n.details)  # noqa: E731
        elif n.action == "Rebuild index" and self.session is not None:
            action = lambda d=self.session.index_dir: self.rebuild(d)  # noqa: E731
        self.message = n.text
        self.banner.show(n.text, n.action if action else None, action)

    def _show_details(self, title: str, lines, font: str = "TkDefaultFont") -> None:
        self.details_window = show_lines(self.root, title, lines, font)

    def _report_exception(self, exc_type, exc, tb):
        self._failed(exc)

    def _failed(self, exc: BaseException, prefix: str = "") -> None:
        """A user's error as a message line; a bug as a message plus the traceback in the terminal."""
        if not isinstance(exc, QviError):
            logging.getLogger("qvi").error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
        n = self.bench.failed(exc, prefix)
        self.message = n.text
        self.banner.show(n.text)
        log.warning(n.text)

    def _set_busy(self, on: bool) -> None:
        if on:
            self.busy.pack(side="right")
            self.busy.start(12)
        else:
            self.busy.stop()
            self.busy.pack_forget()

    # -- the filters' boxes ----------------------------------------------------------------------
    def _show_filters(self) -> None:
        """The category box and the filter row set to the workbench's filters (after a library
        opens, after Back), without re-ranking."""
        f = self.bench.filters
        self.category_var.set(self._category_label(f.category))
        self.filter_row.show(f)
        self._count_facets()

    def _count_facets(self) -> None:
        """Each category's and each length's count among the sounds the other filters keep (with
        `door` typed, where the doors are), counted on a worker, then shown in their boxes."""
        session, filters = self.session, self.bench.filters
        if session is None or filters == self._facets_shown:
            return
        self.tasks.submit(lambda: session.index.facets(filters),
                          lambda facets: self._show_facets(session, filters, facets),
                          lambda exc: log.info("could not count the filters' choices: %s", exc))

    def _show_facets(self, session, filters: Filters, facets) -> None:
        """The counts beside each choice; a category none of the kept sounds is in is left out of
        the box (unless chosen). Counts for filters changed since are dropped: theirs follow."""
        if session is not self.session or filters != self.bench.filters:
            return
        self._facets_shown = filters
        self._show_category_counts(facets.categories, filters.category)
        self.filter_row.show_counts(facets.lengths)

    def _show_category_counts(self, counts: dict[str, int], chosen: str | None = None) -> None:
        """The category box's choices, each with its count (*All categories* with theirs: what
        the words and the length keep); one holding no sound is left out, unless it is the one
        chosen. The box then shows the choice with its new count."""
        self.category_box.configure(values=counted_choices(ALL, counts, chosen))
        self.category_var.set(self._category_label(chosen))

    def _show_query(self, spec) -> None:
        """The query's plot, titled with its name and length (after a search, after Back)."""
        q = self.bench.query
        self.spectrograms.show("query", spec, f"Query: {q.label} ({q.seconds:.1f} s)")

    def _category_label(self, category: str | None) -> str:
        """A category (None: all of them) as its box lists it, with its count."""
        return shown_choice(self.category_box, ALL if category is None else category, ALL)

    # -- recording -------------------------------------------------------------------------------
    def space(self) -> None:
        """Space: start or stop recording; just after recording stopped by itself it is ignored."""
        action = self.last_space = self.bench.space()
        if action == "start":
            self.start_recording()
        elif action == "stop":
            self.stop_recording()
        else:
            self.say("recording had already stopped by itself; press Space again to record anew")

    def toggle_record(self) -> None:
        if self.recorder is not None and self.recorder.recording:
            self.stop_recording()
        else:
            self.start_recording()

    def start_recording(self) -> None:
        if self.session is None:
            self.error("Open a library first (File ▸ Open library folder…).")
            return
        self.stop_playing()
        by_itself = lambda: self.tasks.post(self.stop_recording, True)     # noqa: E731 (from the audio thread)
        self.recorder = Recorder(self.settings.max_record_s, self.settings.input_device, on_limit=by_itself,
                                 quiet_s=QUIET_S if self.settings.stop_when_quiet else 0.0, on_quiet=by_itself)
        try:
            self.recorder.start()
        except QviError as exc:
            self.recorder = None
            self._failed(exc, "Cannot record: ")
            return
        self.bench.recording_started()
        self._show_notice()
        self.record_button.configure(text="■ Stop")
        then = "it stops when you do (or press Space)" if self.settings.stop_when_quiet else "then press Space"
        self.say(f"recording at {self.recorder.sample_rate} Hz: imitate the sound; {then}")
        self._tick_meter()

    def _tick_meter(self) -> None:
        rec = self.recorder
        if rec is None or not rec.recording:
            return
        self.meter.show(rec.level)
        self.countdown.configure(text=f"{rec.elapsed:4.1f} s  ·  {rec.countdown()}")
        self.root.after(40, self._tick_meter)

    def stop_recording(self, by_itself: bool = False) -> None:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        self.bench.recording_stopped(by_itself)
        self.record_button.configure(text="● Record")
        self.meter.show(LevelMeter.FLOOR_DB)
        self.countdown.configure(text="stopping…")
        # Closing the stream waits for the audio thread: off the Tk thread, so quick Spaces never lag.
        self.tasks.submit(rec.stop, lambda out: self._recorded(*out, rec.clipped), self._search_failed)

    def _recorded(self, wave, sr, clipped: float) -> None:
        self.countdown.configure(text=f"recorded {len(wave) / max(sr, 1):.1f} s")
        self.search(wave, sr, RECORDING_LABEL, clipped)

    # -- querying --------------------------------------------------------------------------------
    def open_query_dialog(self) -> None:
        # Both cases: Tk's own dialog (X11) matches case by case, and field recorders write ZOOM0001.WAV.
        audio = " ".join(f"*{e} *{e.upper()}" for e in sorted(app.AUDIO_EXTENSIONS))
        path = filedialog.askopenfilename(parent=self.root, title="Open a query sound",
                                          initialdir=self.settings.last_folder or str(Path.home()),
                                          filetypes=[("Audio", audio), ("All files", "*")])
        if path:
            self._remember_folder(str(Path(path).parent))
            self.open_query(Path(path))

    def open_query(self, path: Path) -> None:
        if self.session is None:
            self.error("Open a library first.")
            return
        self._set_busy(True)
        self.tasks.submit(lambda: app.load_audio(path),
                          lambda loaded: (self._set_busy(False), self.search(*loaded, path.name)),
                          self._search_failed)

    def search(self, wave: np.ndarray, sr: int, label: str, clipped: float | None = None) -> None:
        """Trim, embed and rank in a worker; only the latest search's answer is shown."""
        bench = self.bench
        bench.filters, bench.settings.top_n = self._filters(), self._top_n()
        self._search_token += 1
        token = self._search_token
        self._set_busy(True)
        self.say("searching…")

        def work():
            t0 = time.perf_counter()
            result = bench.search(wave, sr, clipped)
            spec = app.spectrogram(result.query_wave, sr)
            return result, spec, (time.perf_counter() - t0) * 1e3

        self.tasks.submit(work, lambda out: self._searched(token, sr, label, *out), self._search_failed)

    def _searched(self, token, sr, label, result, spec, elapsed_ms) -> None:
        if token != self._search_token:
            return
        self._set_busy(False)
        self.bench.searched(result, sr, label)
        self._show_notice()
        advice = app.clipping_advice(result.clipped)
        if advice:
            self.banner.show(sentence(advice), note=True)
        self.replay_button.configure(state="normal")
        self._show_query(spec)
        self._show_result(result)
        self.say(self.bench.status_line(elapsed_ms))
        log.info("ranked %d results in %.0f ms (top: %s)", len(result.hits), elapsed_ms,
                 result.hits[0].relpath if result.hits else "-")
        q = self.bench.query
        self.tasks.submit(lambda: self.bench.feedback().remember_query(q.wave, q.sr, label), lambda _: None,
                          lambda exc: log.warning("the query was not added to the history: %s", exc))

    def search_part(self, start_s: float, end_s: float) -> None:
        """A drag across the query's spectrogram: that part searched on its own."""
        if self.recorder is not None:
            return
        try:
            part = self.bench.query_part(start_s, end_s)
        except QviError as exc:
            self._failed(exc)
            return
        self.search(part.wave, part.sr, part.label)

    def _search_failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        self.say(self.bench.status_line())
        self._failed(exc)

    def _filters(self) -> Filters:
        """The category, name words and length the widgets show, as one value."""
        value = choice_of(self.category_var.get())
        category = None if value == ALL else value
        return Filters(category, self.filter_row.name, self.filter_row.length)

    def find_by_name(self) -> str:
        """Ctrl+F: the keys go to the name field, its words selected to type over."""
        self.filter_row.focus_name()
        return "break"

    def _top_n(self) -> int:
        try:
            n = int(self.top_var.get())
        except (tk.TclError, ValueError):
            n = self.settings.top_n
        return max(1, min(n, 1000))

    def rerank(self) -> None:
        """Apply new filters or result count to the current list at once (no re-recording)."""
        top = self._top_n()
        changed = top != self.settings.top_n
        result = self.bench.refine(self._filters(), top)
        self._count_facets()
        if changed:
            self._save_settings()
        if result is not None:
            self._show_result(result)
            self.say(self.bench.status_line(result.total_ms))
        elif self.bench.query is None:          # no query, no filter: the first-run panel again
            self._show_list(False)
            self.say(self.bench.status_line())

    def _show_list(self, on: bool) -> None:
        if on and not self.results.winfo_ismapped():
            self.first_run.pack_forget()
            self.results.pack(fill="both", expand=True)
        elif not on and not self.first_run.winfo_ismapped():
            self.results.pack_forget()
            self.first_run.pack(fill="both", expand=True)

    def _show_result(self, result: app.SearchResult) -> None:
        self._show_list(True)
        self.results.show(result.hits, self.bench.ratings)
        self.results.mark_playing(self.playing)
        if self.bench.reranked:
            self.original_button.pack(side="left", padx=(8, 0))
        else:
            self.original_button.pack_forget()
        self.root.after_idle(self._give_list_room)         # once the buttons' new width is known
        if self._nothing_note and self.banner.text == self._nothing_note:
            self.banner.hide()                    # the note of an empty list, gone with it
        if result.hits:
            self._quiet_hit = result.hits[0]      # show the best match without playing it
            self.results.tree.selection_set("0")
            self.results.tree.focus("0")
            if not self._typing():                # a list narrowed by the name field: keep typing there
                self.results.tree.focus_set()
        else:
            said = result.filters.nothing_found()
            self.spectrograms.show("result", None, f"Result: {said}")
            self.spectrograms.show_wave(None, 0)
            if result.filters != NO_FILTERS and not self.banner.text:     # never over a problem's line
                self._nothing_note = sentence(said)
                self.banner.show(self._nothing_note, "Show every sound", self.clear_filters, note=True)

    def clear_filters(self) -> None:
        """Every sound again: no category, no words, any length, the list re-ranked at once."""
        self.category_var.set(self._category_label(None))
        self.filter_row.show(NO_FILTERS)
        self.rerank()

    # -- the query saved ---------------------------------------------------------------------------
    def save_query_dialog(self) -> None:
        """Ctrl+Shift+S: the query as searched (what ▶ Query plays) saved as a WAV file."""
        q = self.bench.query
        if q is None:
            self.error("There is no query to save yet: record one (Space) or open a sound file (Ctrl+O).")
            return
        stem = Path(q.label).stem if q.label != RECORDING_LABEL else time.strftime("imitation %Y-%m-%d %H.%M.%S")
        path = filedialog.asksaveasfilename(parent=self.root, title="Save the query as", defaultextension=".wav",
                                            filetypes=[("WAV", "*.wav")],
                                            initialdir=self.settings.last_folder or str(Path.home()),
                                            initialfile=f"{stem}.wav")
        if not path:
            return
        self._remember_folder(str(Path(path).parent))
        self.tasks.submit(lambda: self.bench.save_query(path), self.say,
                          lambda exc: self._failed(exc, "The query was not saved: "))

    def copy_selected_path(self) -> None:
        """The selected results' paths, one a line."""
        hits = self.results.selected_all()
        if not hits:
            return
        self.root.clipboard_clear()
        self.root.clipboard_append("\n".join(str(h.path) for h in hits))
        self.say(f"copied {hits[0].path}" if len(hits) == 1 else f"copied {len(hits)} paths")

    def open_selected(self) -> None:
        """The selected sound in the desktop's application for it (an editor, a player)."""
        hit = self.results.selected()
        if hit is not None:
            self._hand_to_desktop(hit, hit.path, "No application could be started")

    def reveal_selected(self) -> None:
        """The selected sound's folder in the file manager."""
        hit = self.results.selected()
        if hit is not None:
            self._hand_to_desktop(hit, hit.path.parent, "No file manager could be started")

    def _hand_to_desktop(self, hit, path: Path, failed: str) -> None:
        opener = "open" if sys.platform == "darwin" else "explorer" if os.name == "nt" else "xdg-open"
        try:
            subprocess.Popen([opener, str(path)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.copy_selected_path()
            self.error(f"{failed}; the path was copied instead: {hit.path}")

    def _context_menu(self, event) -> None:
        row = self.results.tree.identify_row(event.y)
        if row:
            if row not in self.results.tree.selection():     # within several picked: keep them, for Copy path
                self.results.tree.selection_set(row)
            self.results.tree.focus(row)
            self.result_menu.tk_popup(event.x_root, event.y_root)

    def more_like_selected(self) -> None:
        """The library ranked by the selected sound (its stored embedding), the filter still
        applying; by the part dragged across its waveform, when there is one; by what several
        sounds share, when several are picked (Ctrl+click)."""
        hit = self.results.selected()
        if hit is None or self.session is None:
            return
        picked = self.results.selected_all()
        also = tuple(h for h in picked if h is not hit) if len(picked) > 1 else ()
        part = None if also else self._part_selected()
        self.bench.filters, self.bench.settings.top_n = self._filters(), self._top_n()
        before = self.bench.result
        self.tasks.submit(lambda: self.bench.rank_like(hit, part, also),
                          lambda result: self._more_like_ranked(before, hit, part, also, result), self._search_failed)

    def _more_like_ranked(self, before, hit, part, also, result) -> None:
        """The list ranked on the worker shown, unless another came meanwhile (a search ended, Back
        was pressed): that one stays, as the latest of two searches does."""
        if self.bench.result is not before:
            return
        self.bench.show_like(hit, part, also, result)
        self._show_notice()
        self._show_result(result)
        self.say(f"more like {self._similar_words()}  ·  " + self.bench.status_line(result.total_ms))

    def _similar_words(self) -> str:
        """What the list is more like: a sound, a part of it, or several sounds."""
        hit, part, also = self.bench.similar_to, self.bench.similar_part, self.bench.similar_also
        if also:
            return f"{hit.path.name} and {counted(len(also), 'more sound')} (what they share)"
        return hit.path.name if part is None else f"{part[0]:.2f}–{part[1]:.2f} s of {hit.path.name}"

    def back(self) -> None:
        """Alt+←: the list before this one (after More like this, or the query before), as it
        was: its query, filters and ratings."""
        self._went(self.bench.back(), "back to", "no list before this one")

    def forward(self) -> None:
        """Alt+→: the list Back left, as it was left."""
        self._went(self.bench.forward(), "forward to", "no list after this one")

    def _went(self, result, verb: str, none: str) -> None:
        if result is None:
            self.say(none)
            return
        self._show_filters()
        q = self.bench.query
        if q is not None and len(q.wave):               # another query's list: its plot too (off the Tk thread)
            self.tasks.submit(lambda: app.spectrogram(q.wave, q.sr),
                              lambda spec: self.bench.query is q and self._show_query(spec),
                              lambda exc: log.info("no plot of the query: %s", exc))
        elif q is None:                                 # a list made before any query: none is shown
            self.spectrograms.show_no_query()
        self._show_result(result)
        like = self.bench.similar_to
        what = (f"more like {self._similar_words()}" if like else q.label if q else
                "the sounds the filters keep" if self.bench.listing else "the query")
        self.say(f"{verb} {what}  ·  {len(self.bench.history)} before it, {len(self.bench.future)} after")

    def original_ranking(self) -> None:
        result = self.bench.original_ranking()
        if result is not None:
            self._show_result(result)

    # -- feedback --------------------------------------------------------------------------------
    def rate_selected(self, rating: int) -> None:
        """Save a rating and re-rank the list by it at once (liked on top, disliked at the bottom)."""
        hit = self.results.selected()
        if hit is None or self.bench.base is None:
            return
        taking_back = self.bench.rating_of(hit) == rating
        try:
            result = self.bench.rate(hit, rating)
        except QviError as exc:
            self.error(f"Your rating could not be {'taken back' if taking_back else 'saved'}: {exc}")
            return
        self._show_result(result)
        pos = next((i for i, h in enumerate(self.results.hits) if h.relpath == hit.relpath), 0)
        self.results.tree.selection_set(str(pos))
        self.results.tree.focus(str(pos))
        self._quiet_hit = self.results.hits[pos]
        if taking_back:
            self.say(f"took back the rating of {hit.path.name} (press {'+' if rating > 0 else '-'} again to "
                     f"give it): {'the list is re-ranked' if self.bench.reranked else 'the first ranking again'}")
            return
        self.say(f"rated {hit.path.name} {'up' if rating > 0 else 'down'}: the list is re-ranked "
                 f"(saved in {feedback_db_path()}; the same key again takes it back)")
        try:
            due = rating > 0 and self.bench.learning_due()
        except QviError as exc:                 # the store could not be read: the rating itself is saved
            log.warning("could not count the ratings: %s", exc)
            due = False
        if due:
            self.learn_from_ratings(auto=True)

    def export_feedback_dialog(self) -> None:
        path = filedialog.asksaveasfilename(parent=self.root, title="Export feedback", defaultextension=".csv",
                                            initialdir=self.settings.last_folder or str(Path.home()),
                                            initialfile="qvi-feedback.csv", filetypes=[("CSV", "*.csv")])
        if not path:
            return
        try:
            n = self.bench.feedback().export_csv(path)
        except (QviError, OSError) as exc:
            self.error(f"Export failed: {exc}")
            return
        self.say(f"exported {n} ratings to {path}")

    def copy_liked_dialog(self) -> None:
        folder = ask_folder(self.root, self.settings.last_folder or str(Path.home()))
        if folder:
            self.copy_liked_to(Path(folder))

    def copy_liked_to(self, folder: Path) -> None:
        """Every sound given a thumbs up, copied into ``folder`` in the background."""
        self.say(f"copying your liked sounds to {folder}…")
        self.tasks.submit(lambda: self.bench.copy_liked(folder), lambda report: self.say(report.summary()),
                          lambda exc: self._failed(exc, "Copying the liked sounds failed: "))

    def fill_recent(self) -> None:
        menu = self.recent_menu
        menu.delete(0, "end")
        try:
            recent = self.bench.feedback().recent_queries(12)
        except QviError as exc:
            self.error(str(exc))
            recent = []
        if not recent:
            menu.add_command(label="(none yet)", state="disabled")
        for created, label, path in recent:
            when = time.strftime("%d %b %H:%M", time.localtime(created))
            menu.add_command(label=f"{when}  {label}", command=lambda p=path, lab=label: self._search_again(p, lab))

    def _search_again(self, path: str, label: str) -> None:
        self.tasks.submit(lambda: app.load_audio(path), lambda loaded: self.search(*loaded, label),
                          self._search_failed)

    # -- the adapter -----------------------------------------------------------------------------
    def learn_from_ratings(self, auto: bool = False) -> None:
        """Train the query adapter on the ratings, in the background with a progress bar; ``auto``:
        started by a rating (Model ▸ Learn automatically), so its outcome is told quietly and
        the list on screen stays as it is."""
        if self.session is None or self._cancel_indexing is not None:
            return
        if self._learning:
            self.say("already learning from your ratings…")
            return
        self._learning = True
        self.index_progress.configure(value=0, maximum=100)
        self.index_progress.pack(side="right")
        self.say("learning from your ratings automatically (Model ▸ Learn automatically)…" if auto else
                 "learning from your ratings…")

        def progress(fraction):
            self.tasks.post(lambda: self.index_progress.configure(value=100 * fraction))

        try:
            self.bench.learning_started()
            self._save_settings()               # the attempt is counted even if qvi is closed meanwhile
        except QviError as exc:
            log.warning("could not count the ratings: %s", exc)
        self.tasks.submit(lambda: self.bench.learn(progress), lambda report: self._learned(report, auto),
                          self._learn_failed)

    def _learned(self, report, auto: bool = False) -> None:
        self._learning = False
        self.index_progress.pack_forget()
        if report.kept:
            self.adapter_var.set(True)
            self.settings.use_adapter = True
            self._save_settings()
            if auto:                            # the list being rated stays; the next search uses it
                self.say(report.summary() + "; used from the next search  ·  " + self.bench.status_line())
                return
            self.say(report.summary() + "  ·  " + self.bench.status_line())
            if self.bench.query is not None:
                q = self.bench.query
                self.search(q.wave, q.sr, q.label)
        elif auto:
            self.say("Learned automatically, not kept: " + report.summary())
        elif not report.held_out:               # too few ratings to try: the reason alone
            self.error(sentence(report.summary()))
        else:
            self.error("Nothing was learned: " + report.summary())

    def _learn_failed(self, exc) -> None:
        self._learning = False
        self.index_progress.pack_forget()
        self._failed(exc, "Learning from your ratings failed: ")

    def switch_even_loudness(self) -> None:
        self.settings.even_loudness = self.even_loudness_var.get()
        self._save_settings()
        self.say("sounds play at one loudness" if self.settings.even_loudness else "sounds play at their own level")

    def switch_loop(self) -> None:
        """Loop playback (L): an ambience or a loop auditioned as it will be used. It applies to
        the result playing at once; switched off, the pass playing is the last."""
        self.audition.set_loop(self.loop_var.get())
        self._save_settings()
        self.say("results play in a loop until stopped (Esc)" if self.settings.loop_playback
                 else "results play once")

    def switch_stop_when_quiet(self) -> None:
        self.settings.stop_when_quiet = self.stop_when_quiet_var.get()
        self._save_settings()
        self.say(f"recording stops {QUIET_S:.0f} s after your imitation" if self.settings.stop_when_quiet
                 else "recording runs until Space (or its limit)")

    def switch_auto_learning(self) -> None:
        self.settings.learn_automatically = self.auto_learn_var.get()
        self._save_settings()

    def switch_adapter(self, on: bool) -> None:
        if self.session is None:
            return
        try:
            active = self.bench.use_adapter(on)
        except QviError as exc:
            self._failed(exc)
            return
        self._save_settings()
        self.say(("using what was learned from your ratings" if active else
                  "not using an adapter" if not on else "nothing learned yet: Model ▸ Learn from my ratings")
                 + "  ·  " + self.bench.status_line())

    def delete_adapter(self) -> None:
        if self.session is None:
            return
        self.bench.delete_adapter()
        self.say("what was learned from your ratings is forgotten  ·  " + self.bench.status_line())

    # -- devices ---------------------------------------------------------------------------------
    def choose_devices(self) -> None:
        """Pick the microphone and speaker; remembered. A lost device comes back when chosen again."""
        try:
            inputs, outputs = list_devices()
        except QviError as exc:
            self._failed(exc)
            return

        def use(microphone: str | None, speaker: str | None) -> None:
            self.settings.input_device = microphone
            self.audition.use_device(speaker)
            self.results.mark_playing(None)
            self._save_settings()
            self.say("audio devices: " + ", ".join(f"{k} {v or DEFAULT_DEVICE}" for k, v in (
                ("microphone", microphone), ("speaker", speaker))))

        self.devices_window = ask_devices(self.root, inputs, outputs, self.settings.input_device,
                                          self.settings.output_device, use)

    # -- misc ------------------------------------------------------------------------------------
    def _remember_folder(self, folder: str) -> None:
        self.settings.last_folder = str(folder)
        self._save_settings()

    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.error(f"Settings cannot be saved in {AppSettings.path().parent} ({exc.strerror or exc}); "
                       "qvi works, but will not remember them.")

    def show_keys(self) -> None:
        self._show_details("Keyboard shortcuts", [f"{keys:<15}{what}" for keys, what in KEYS], font="TkFixedFont")

    def show_about(self) -> None:
        s = self.session
        messagebox.showinfo("About qvi", "\n".join([
            f"qvi {__version__}: query sound effects by vocal imitation.",
            f"Model: {s.model_name if s else '-'}",
            f"Model id: {s.model_id if s else '-'}",
            f"Library: {s.library_root if s else '-'}",
            f"Feedback database: {feedback_db_path()}",
            f"Settings: {AppSettings.path()}",
            f"Reads: {formats_read()}",
            "",
            "The learned encoder is fine-tuned from aisfx by Alison B. Ma and Alexander Lerch "
            "(CC BY 4.0; see models/MODEL_CARD.md). Demo sounds: see assets/ATTRIBUTION.csv.",
        ]), parent=self.root)

    def close(self) -> None:
        """Quit at once: ratings and settings are already on disk; indexing stops where it is
        (the next run resumes it)."""
        self.cancel_indexing()
        self.audition.stop()
        if self.recorder is not None:
            threading.Thread(target=self.recorder.stop, daemon=True).start()
        if self.root.winfo_width() > 1:                 # mapped: its size is the user's (or ours)
            self.settings.window_size = f"{self.root.winfo_width()}x{self.root.winfo_height()}"
            self.settings.list_width = self.panes.sashpos(0)
            try:
                self.settings.save()
            except OSError as exc:                      # said by every other save; quitting is not the moment
                log.info("the window's size was not remembered: %s", exc)
        self.bench.close()
        self.root.destroy()
        self.closed = True
