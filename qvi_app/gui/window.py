"""The qvi window: record an imitation, see the ranked sounds, audition, filter, rate.

All audio analysis happens in :mod:`qvi_app.app` (called from worker threads); this module
only lays out widgets, moves data between them and the application layer, and reports errors.
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
from qvi_app.audio import load_audio
from qvi_app.audio.devices import Player, Recorder
from qvi_app.errors import QviError, StaleIndexError
from qvi_app.feedback import FeedbackStore
from qvi_app.gui.tasks import TaskRunner
from qvi_app.gui.widgets import LevelMeter, MessageBanner, ResultsTable, SpectrogramPanel
from qvi_app.index import IndexingCancelled, ReferenceIndex
from qvi_app.paths import DEMO_ENCODER as DEFAULT_ENCODER, DEMO_INDEX, default_index_dir
from qvi_app.settings import AppSettings, feedback_db_path

log = logging.getLogger("qvi.gui")
ALL = "All categories"


class QviWindow:
    def __init__(self, root: tk.Tk, settings: AppSettings | None = None, index_dir=None, query_file=None):
        self.root = root
        self.settings = settings or AppSettings.load()
        self.tasks = TaskRunner(root)
        self.session: app.QviSession | None = None
        self.result: app.SearchResult | None = None
        self.query: tuple[np.ndarray, int] | None = None      # the trimmed query
        self.ratings: dict[str, int] = {}                      # relpath → rating for the current query
        self.recorder: Recorder | None = None
        self.player = Player(self.settings.output_device)
        self.playing: app.SearchHit | None = None
        self._feedback: FeedbackStore | None = None
        self._search_token = 0
        self._play_token = 0
        self._cancel_indexing: threading.Event | None = None
        self._quiet_hit = None   # the best match, selected for display after a search, not auditioned

        root.title("qvi — find sounds by imitating them")
        root.geometry("1180x720")
        root.minsize(860, 520)
        root.report_callback_exception = self._report_exception
        self._style()
        self._build_menu()
        self._build_layout()
        self._bind_keys()
        root.protocol("WM_DELETE_WINDOW", self.close)
        self.open_library(Path(index_dir) if index_dir else self._remembered_index(), then_query=query_file)

    # -- layout ----------------------------------------------------------------------------
    def _style(self):
        style = ttk.Style(self.root)
        if "clam" in style.theme_names():
            style.theme_use("clam")
        style.configure("Banner.TFrame", background="#fce8e6")
        style.configure("Banner.TLabel", background="#fce8e6", foreground="#a50e0e")
        style.configure("Banner.TButton", padding=(4, 0))
        style.configure("Record.TButton", font=("TkDefaultFont", 11, "bold"), padding=(12, 6))
        style.configure("Status.TLabel", foreground="#5f6368")
        style.configure("Treeview", rowheight=22)

    def _build_menu(self):
        bar = tk.Menu(self.root)
        file = tk.Menu(bar, tearoff=False)
        file.add_command(label="Open query sound…", accelerator="Ctrl+O", command=self.open_query_dialog)
        file.add_command(label="Open library folder…", accelerator="Ctrl+L", command=self.open_library_dialog)
        file.add_command(label="Use the demo library", command=lambda: self.open_library(DEMO_INDEX, remember=True))
        file.add_separator()
        file.add_command(label="Export feedback as CSV…", command=self.export_feedback_dialog)
        file.add_separator()
        file.add_command(label="Quit", accelerator="Ctrl+Q", command=self.close)
        bar.add_cascade(label="File", menu=file)
        result = tk.Menu(bar, tearoff=False)
        result.add_command(label="Play", accelerator="Enter", command=self.play_selected)
        result.add_command(label="Stop playing", accelerator="Esc", command=self.stop_playing)
        result.add_command(label="Thumbs up (good match)", accelerator="+", command=lambda: self.rate_selected(1))
        result.add_command(label="Thumbs down (poor match)", accelerator="-", command=lambda: self.rate_selected(-1))
        result.add_separator()
        result.add_command(label="Copy file path", accelerator="Ctrl+C", command=self.copy_selected_path)
        result.add_command(label="Show in folder", command=self.reveal_selected)
        bar.add_cascade(label="Result", menu=result)
        self.result_menu = result
        helpm = tk.Menu(bar, tearoff=False)
        helpm.add_command(label="About qvi", command=self.show_about)
        bar.add_cascade(label="Help", menu=helpm)
        self.root.configure(menu=bar)

    def _build_layout(self):
        root = self.root
        top = ttk.Frame(root, padding=(10, 8))
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
        self.replay_button.pack(side="left", padx=(0, 16))
        ttk.Label(top, text="Category").pack(side="left")
        self.category_var = tk.StringVar(value=ALL)
        self.category_box = ttk.Combobox(top, textvariable=self.category_var, state="readonly", width=26)
        self.category_box.pack(side="left", padx=(4, 16))
        self.category_box.bind("<<ComboboxSelected>>", lambda e: self.rerank())
        ttk.Label(top, text="Show").pack(side="left")
        self.top_var = tk.IntVar(value=self.settings.top_n)
        self.top_box = ttk.Spinbox(top, from_=5, to=200, increment=5, width=5, textvariable=self.top_var,
                                   command=self.rerank)
        self.top_box.pack(side="left", padx=4)
        self.top_box.bind("<Return>", lambda e: self.rerank())
        ttk.Label(top, text="results").pack(side="left")
        self.busy = ttk.Progressbar(top, mode="indeterminate", length=90)   # shown while working

        self.banner = MessageBanner(root)
        self.banner.grid(row=1, column=0, sticky="ew", padx=10)
        self.banner.hide()

        panes = ttk.PanedWindow(root, orient="horizontal")
        panes.grid(row=2, column=0, sticky="nsew", padx=10, pady=(4, 4))
        left = ttk.Frame(panes)
        self.results = ResultsTable(left)
        self.results.pack(fill="both", expand=True)
        actions = ttk.Frame(left, padding=(0, 6, 0, 0))
        actions.pack(fill="x")
        self.play_button = ttk.Button(actions, text="▶ Play", command=self.play_selected)
        self.stop_button = ttk.Button(actions, text="■ Stop", command=self.stop_playing)
        self.up_button = ttk.Button(actions, text="▲ Thumbs up", command=lambda: self.rate_selected(1))
        self.down_button = ttk.Button(actions, text="▼ Thumbs down", command=lambda: self.rate_selected(-1))
        self.copy_button = ttk.Button(actions, text="Copy path", command=self.copy_selected_path)
        for b in (self.play_button, self.stop_button, self.up_button, self.down_button, self.copy_button):
            b.pack(side="left", padx=(0, 6))
        panes.add(left, weight=3)
        self.spectrograms = SpectrogramPanel(panes)
        panes.add(self.spectrograms, weight=2)

        bottom = ttk.Frame(root, padding=(10, 2, 10, 6))
        bottom.grid(row=3, column=0, sticky="ew")
        self.status = ttk.Label(bottom, text="loading…", style="Status.TLabel")
        self.status.pack(side="left", fill="x", expand=True)
        self.index_progress = ttk.Progressbar(bottom, mode="determinate", length=220)
        self.index_cancel = ttk.Button(bottom, text="Cancel", command=self.cancel_indexing)
        self.message = ""  # the latest status or error text, for tests and screen readers
        root.columnconfigure(0, weight=1)
        root.rowconfigure(2, weight=1)

        tree = self.results.tree
        tree.bind("<<TreeviewSelect>>", self._on_select)
        tree.bind("<Return>", lambda e: self.play_selected())
        tree.bind("<Double-1>", lambda e: self.copy_selected_path())
        tree.bind("<Button-3>", self._context_menu)

    def _bind_keys(self):
        r = self.root
        r.bind("<space>", lambda e: self._unless_typing(e, self.toggle_record))
        r.bind("<Escape>", lambda e: self.stop_playing())
        for key in ("<plus>", "<equal>", "<KP_Add>"):
            r.bind(key, lambda e: self._unless_typing(e, lambda: self.rate_selected(1)))
        for key in ("<minus>", "<KP_Subtract>"):
            r.bind(key, lambda e: self._unless_typing(e, lambda: self.rate_selected(-1)))
        r.bind("<Control-o>", lambda e: self.open_query_dialog())
        r.bind("<Control-l>", lambda e: self.open_library_dialog())
        r.bind("<Control-q>", lambda e: self.close())
        r.bind("<Control-c>", lambda e: self.copy_selected_path())

    @staticmethod
    def _unless_typing(event, action):
        if isinstance(event.widget, (ttk.Entry, tk.Entry, ttk.Spinbox)):
            return None
        action()
        return "break"

    # -- messages --------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.message = text
        self.status.configure(text=text)
        log.info(text)

    def error(self, text: str, action_text: str | None = None, action=None) -> None:
        self.message = text
        self.banner.show(text, action_text, action)
        log.warning(text)

    def _report_exception(self, exc_type, exc, tb):
        self._failed(exc)

    def _failed(self, exc: BaseException, prefix: str = "") -> None:
        """A user's error as a message line; a bug as a message plus the traceback in the terminal."""
        if isinstance(exc, QviError):
            self.error(prefix + str(exc))
        else:
            exc_type = type(exc)
            logging.getLogger("qvi").error("unexpected error", exc_info=(exc_type, exc, exc.__traceback__))
            self.error(f"Something went wrong inside qvi ({exc_type.__name__}: {exc}). "
                       "Details are in the terminal; please report them.")

    def _status_line(self, last_ms: float | None = None) -> str:
        s = self.session
        if s is None:
            return "no library open"
        parts = [f"{len(s.index)} sounds in {len(s.categories())} categories", f"library {s.library_root}",
                 f"model {s.model_id}"]
        if last_ms is not None:
            parts.append(f"last query {last_ms:.0f} ms")
        return "  ·  ".join(parts)

    def _set_busy(self, on: bool) -> None:
        if on:
            self.busy.pack(side="right")
            self.busy.start(12)
        else:
            self.busy.stop()
            self.busy.pack_forget()

    # -- library ---------------------------------------------------------------------------
    def _remembered_index(self) -> Path:
        remembered = self.settings.index_dir
        return Path(remembered) if remembered and Path(remembered).exists() else DEMO_INDEX

    def open_library(self, index_dir: Path, then_query=None, remember: bool = False) -> None:
        """Load an index and its encoder in the background (the model takes a second or two)."""
        self.say(f"opening the library index {index_dir}…")
        self._set_busy(True)
        self.tasks.submit(lambda: app.QviSession(index_dir),
                          lambda s: self._library_opened(s, then_query, remember),
                          lambda exc: self._library_failed(index_dir, exc))

    def _library_opened(self, session: app.QviSession, then_query, remember: bool) -> None:
        self._set_busy(False)
        self.session = session
        self.banner.hide()
        cats = session.categories()
        self.category_box.configure(values=[ALL] + [f"{c}  ({n})" for c, n in cats.items()])
        self.category_var.set(ALL)
        self.results.show([], {})
        self.result = None
        self.say(self._status_line())
        log.info("ready: %d sounds, model %s", len(session.index), session.model_id)
        if remember:
            self.settings.index_dir = None if session.index_dir == DEMO_INDEX else str(session.index_dir)
            self._save_settings()
        # The embeddings' checksum is read in the background: damage that search cannot see is reported.
        self.tasks.submit(session.index.verify, lambda problem: self._verified(session, problem), lambda exc: None)
        if then_query:
            self.open_query(Path(then_query))

    def _verified(self, session, problem: str | None) -> None:
        if problem and session is self.session:
            self.error(problem, "Rebuild index", lambda: self.rebuild(session.index_dir))

    def _library_failed(self, index_dir: Path, exc: BaseException) -> None:
        self._set_busy(False)
        if isinstance(exc, StaleIndexError):
            self.error(f"This library's index was made by another model version, so it cannot be searched "
                       f"with the current one. ({exc})", "Rebuild index", lambda: self.rebuild(index_dir))
        else:
            self._failed(exc, "The library cannot be opened: ")
        self.say("no library open")

    def rebuild(self, index_dir: Path) -> None:
        probe = ReferenceIndex.open(index_dir)
        self.index_folder(probe.library_root, index_dir, probe.meta["encoder_name"])

    def open_library_dialog(self) -> None:
        folder = filedialog.askdirectory(parent=self.root, title="Choose a folder of sounds to search")
        if folder:
            self.index_folder(Path(folder))

    def index_folder(self, folder: Path, index_dir: Path | None = None, encoder: str = DEFAULT_ENCODER) -> None:
        """Index (or update) a folder in the background, with progress and a Cancel button."""
        if self._cancel_indexing is not None:
            self.error("A library is already being indexed; wait for it or cancel it first.")
            return
        index_dir = index_dir or default_index_dir(folder, encoder)
        cancel = self._cancel_indexing = threading.Event()
        self.index_progress.configure(value=0, maximum=1)
        self.index_progress.pack(side="right")
        self.index_cancel.pack(side="right", padx=6)
        self.say(f"indexing {folder}…")

        def progress(done, total, name):
            self.tasks.post(self._indexing_progress, done, total, name)

        self.tasks.submit(
            lambda: app.build_index(folder, index_dir, encoder, show_progress=False, on_progress=progress,
                                    cancel=cancel),
            lambda report: self._indexing_done(report, index_dir),
            self._indexing_failed)

    def _indexing_progress(self, done: int, total: int, name: str) -> None:
        self.index_progress.configure(value=done, maximum=max(total, 1))
        self.say(f"indexing {done}/{total}: {name}" if name else f"indexing: writing the index ({total} sounds)")

    def _end_indexing(self) -> None:
        self._cancel_indexing = None
        self.index_progress.pack_forget()
        self.index_cancel.pack_forget()

    def _indexing_done(self, report, index_dir: Path) -> None:
        self._end_indexing()
        if report.skipped:
            shown = "; ".join(f"{s.path}: {s.reason}" for s in report.skipped[:3])
            more = f" and {len(report.skipped) - 3} more" if len(report.skipped) > 3 else ""
            self.error(f"{len(report.skipped)} file(s) could not be used and were left out: {shown}{more}")
        self.open_library(index_dir, remember=True)

    def _indexing_failed(self, exc: BaseException) -> None:
        self._end_indexing()
        if isinstance(exc, IndexingCancelled):
            self.say(f"{exc}.  " + self._status_line())
        else:
            self._failed(exc, "Indexing failed: ")

    def cancel_indexing(self) -> None:
        if self._cancel_indexing is not None:
            self._cancel_indexing.set()

    # -- recording -------------------------------------------------------------------------
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
        self.recorder = Recorder(self.settings.max_record_s, self.settings.input_device,
                                 on_limit=lambda: self.tasks.post(self.stop_recording))
        try:
            self.recorder.start()
        except QviError as exc:
            self.recorder = None
            self.error(f"Cannot record: {exc}")
            return
        self.banner.hide()
        self.record_button.configure(text="■ Stop")
        self.say(f"recording at {self.recorder.sample_rate} Hz: imitate the sound, then press Space")
        self._tick_meter()

    def _tick_meter(self) -> None:
        rec = self.recorder
        if rec is None or not rec.recording:
            return
        self.meter.show(rec.level)
        left = max(0.0, rec.max_seconds - rec.elapsed)
        self.countdown.configure(text=f"{rec.elapsed:4.1f} s  ·  {left:4.1f} s left")
        self.root.after(40, self._tick_meter)

    def stop_recording(self) -> None:
        rec, self.recorder = self.recorder, None
        if rec is None:
            return
        wave, sr = rec.stop()
        self.record_button.configure(text="● Record")
        self.meter.show(LevelMeter.FLOOR_DB)
        self.countdown.configure(text=f"recorded {len(wave) / max(sr, 1):.1f} s")
        self.search(wave, sr, "your recording")

    # -- querying --------------------------------------------------------------------------
    def open_query_dialog(self) -> None:
        path = filedialog.askopenfilename(parent=self.root, title="Open a query sound", filetypes=[
            ("Audio", "*.wav *.flac *.ogg *.mp3 *.aiff *.aif"), ("All files", "*")])
        if path:
            self.open_query(Path(path))

    def open_query(self, path: Path) -> None:
        if self.session is None:
            self.error("Open a library first.")
            return
        self._set_busy(True)
        self.tasks.submit(lambda: load_audio(path),
                          lambda loaded: (self._set_busy(False), self.search(*loaded, path.name)),
                          self._search_failed)

    def search(self, wave: np.ndarray, sr: int, label: str) -> None:
        """Trim, embed and rank in a worker; only the latest search's answer is shown."""
        session, category, top_k = self.session, self._category(), self._top_n()
        self._search_token += 1
        token = self._search_token
        self._set_busy(True)
        self.say("searching…")

        def work():
            t0 = time.perf_counter()
            result = session.search_wave(wave, sr, category, top_k)
            spec = app.spectrogram(result.query_wave, sr)
            return result.query_wave, result, spec, (time.perf_counter() - t0) * 1e3

        self.tasks.submit(work, lambda out: self._searched(token, sr, label, *out), self._search_failed)

    def _searched(self, token, sr, label, trimmed, result, spec, elapsed_ms) -> None:
        if token != self._search_token:
            return
        self._set_busy(False)
        self.query = (trimmed, sr)
        self.ratings = {}
        self.replay_button.configure(state="normal")
        self.spectrograms.show("query", spec, f"Query: {label} ({len(trimmed) / sr:.1f} s)")
        self._show_result(result)
        self.say(self._status_line(elapsed_ms))
        log.info("ranked %d results in %.0f ms (top: %s)", len(result.hits), elapsed_ms,
                 result.hits[0].relpath if result.hits else "-")

    def _search_failed(self, exc: BaseException) -> None:
        self._set_busy(False)
        if isinstance(exc, QviError):
            exc = QviError(str(exc).replace("query: ", "", 1))
            self.say(self._status_line())
        self._failed(exc)

    def _category(self) -> str | None:
        value = self.category_var.get()
        return None if value == ALL else value.split("  (")[0]

    def _top_n(self) -> int:
        try:
            n = int(self.top_var.get())
        except (tk.TclError, ValueError):
            n = self.settings.top_n
        return max(1, min(n, 1000))

    def rerank(self) -> None:
        """Apply a new category or result count to the current query at once (no re-recording)."""
        if self.session is None or self.result is None:
            return
        result = self.session.rerank(self.result, self._category(), self._top_n())
        self._show_result(result)
        if self.settings.top_n != self._top_n():
            self.settings.top_n = self._top_n()
            self._save_settings()
        self.say(self._status_line(result.total_ms))

    def _show_result(self, result: app.SearchResult) -> None:
        self.result = result
        self.results.show(result.hits, self.ratings)
        self.results.mark_playing(self.playing)
        if result.hits:
            self._quiet_hit = result.hits[0]      # show the best match without playing it
            self.results.tree.selection_set("0")
            self.results.tree.focus("0")
            self.results.tree.focus_set()
        else:
            self.spectrograms.show("result", None, "Result: nothing in this category")

    # -- results ---------------------------------------------------------------------------
    def _on_select(self, _event=None) -> None:
        hit = self.results.selected()
        if hit is None:
            return
        plays = hit is not self._quiet_hit
        if plays:
            self._quiet_hit = None
        self.tasks.submit(lambda: self._load_hit(hit), lambda loaded: self._hit_loaded(hit, loaded, plays),
                          self._search_failed)

    def _load_hit(self, hit):
        wave, sr = self.session.load_reference(hit)
        return wave, sr, app.spectrogram(wave, sr)

    def _hit_loaded(self, hit, loaded, play: bool) -> None:
        wave, sr, spec = loaded
        if self.results.selected() is not hit:
            return
        self.spectrograms.show("result", spec, f"#{hit.rank} {hit.path.name} · {hit.category} · {hit.score:.3f}")
        if play:
            self._play(hit, wave, sr)

    def play_selected(self) -> None:
        hit = self.results.selected()
        if hit is None:
            return
        self.tasks.submit(lambda: self.session.load_reference(hit), lambda loaded: self._play(hit, *loaded),
                          self._search_failed)

    def _play(self, hit, wave, sr) -> None:
        if self.recorder is not None:
            return  # never play into a recording
        self._play_token += 1
        token = self._play_token
        try:
            self.player.play(wave, sr, on_done=lambda: self.tasks.post(self._play_ended, token))
        except QviError as exc:
            self.error(f"Cannot play: {exc}")
            return
        self.playing = hit
        self.results.mark_playing(hit)
        self.say(f"playing {hit.relpath}")

    def _play_ended(self, token) -> None:
        if token == self._play_token:
            self.playing = None
            self.results.mark_playing(None)

    def stop_playing(self) -> None:
        self.player.stop()
        self.playing = None
        self.results.mark_playing(None)

    def replay_query(self) -> None:
        if self.query is None or self.recorder is not None:
            return
        self._play_token += 1
        try:
            self.player.play(*self.query)
        except QviError as exc:
            self.error(f"Cannot play: {exc}")
            return
        self.playing = None
        self.results.mark_playing(None)

    def copy_selected_path(self) -> None:
        hit = self.results.selected()
        if hit is None:
            return
        self.root.clipboard_clear()
        self.root.clipboard_append(str(hit.path))
        self.say(f"copied {hit.path}")

    def reveal_selected(self) -> None:
        hit = self.results.selected()
        if hit is None:
            return
        opener = "open" if sys.platform == "darwin" else "explorer" if os.name == "nt" else "xdg-open"
        try:
            subprocess.Popen([opener, str(hit.path.parent)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.copy_selected_path()
            self.error(f"No file manager could be started; the path was copied instead: {hit.path}")

    def _context_menu(self, event) -> None:
        row = self.results.tree.identify_row(event.y)
        if row:
            self.results.tree.selection_set(row)
            self.result_menu.tk_popup(event.x_root, event.y_root)

    # -- feedback --------------------------------------------------------------------------
    def feedback(self) -> FeedbackStore:
        if self._feedback is None:
            self._feedback = FeedbackStore(feedback_db_path())
        return self._feedback

    def rate_selected(self, rating: int) -> None:
        hit = self.results.selected()
        if hit is None or self.query is None or self.result is None:
            return
        try:
            self.feedback().rate(wave=self.query[0], sr=self.query[1], result_path=hit.path, rank=hit.rank,
                                 score=hit.score, rating=rating, category_filter=self.result.category,
                                 model_id=self.session.model_id)
        except QviError as exc:
            self.error(f"Your rating could not be saved: {exc}")
            return
        self.ratings[hit.relpath] = rating
        self.results.set_rating(hit, rating)
        self.say(f"rated {hit.path.name} {'up' if rating > 0 else 'down'} (saved in {feedback_db_path()})")

    def export_feedback_dialog(self) -> None:
        path = filedialog.asksaveasfilename(parent=self.root, title="Export feedback", defaultextension=".csv",
                                            initialfile="qvi-feedback.csv", filetypes=[("CSV", "*.csv")])
        if not path:
            return
        try:
            n = self.feedback().export_csv(path)
        except (QviError, OSError) as exc:
            self.error(f"Export failed: {exc}")
            return
        self.say(f"exported {n} ratings to {path}")

    # -- misc ------------------------------------------------------------------------------
    def _save_settings(self) -> None:
        try:
            self.settings.save()
        except OSError as exc:
            self.error(f"Settings cannot be saved in {AppSettings.path().parent} ({exc.strerror or exc}); "
                       "qvi works, but will not remember them.")

    def show_about(self) -> None:
        s = self.session
        messagebox.showinfo("About qvi", "\n".join([
            f"qvi {__version__}: query sound effects by vocal imitation.",
            f"Model: {s.model_id if s else '-'}",
            f"Library: {s.library_root if s else '-'}",
            f"Feedback database: {feedback_db_path()}",
            f"Settings: {AppSettings.path()}",
            "",
            "The cnn encoder is fine-tuned from aisfx by Alison B. Ma and Alexander Lerch "
            "(CC BY 4.0; see models/MODEL_CARD.md). Demo sounds: see assets/ATTRIBUTION.csv.",
        ]), parent=self.root)

    def close(self) -> None:
        self.player.stop()
        if self.recorder is not None:
            self.recorder.stop()
        if self._feedback is not None:
            self._feedback.close()
        self.root.destroy()
