"""The window's library: the index open, a folder indexed or brought up to date (progress, time
left, Cancel), the Libraries menu and an index forgotten.

A part of :class:`~qvi_app.gui.window.QviWindow` (a mixin: the window is one object to its menus,
keys and tests), kept apart because it is one idea; it reaches the window's widgets (banner,
results, plots, filter boxes) and the workbench as the window does. What a library *is* (which
one is open, what changed in its folder, what forgetting deletes) is decided in
:mod:`qvi_app.app` and :class:`~qvi_app.workbench.Workbench`; here it is run on workers and shown.
"""

from __future__ import annotations

import logging
import threading
import tkinter as tk
from pathlib import Path
from tkinter import messagebox

from qvi_app import app
from qvi_app.errors import counted
from qvi_app.gui.dialogs import ask_folder
from qvi_app.index import NO_FILTERS
from qvi_app.workbench import TimeLeft, say_duration

log = logging.getLogger("qvi.gui")


def library_name(index_dir: Path, library: Path) -> str:
    """What a library is called in the title and the Libraries menu: its folder's name."""
    return "Demo library" if index_dir == app.DEMO_INDEX else library.name or str(library)


class LibraryMixin:
    def _init_library(self) -> None:
        self._cancel_indexing: threading.Event | None = None      # set while a folder is being indexed
        self._time_left: TimeLeft | None = None                   # the indexing's pace, for the time left

    def _remembered_index(self) -> Path:
        remembered = self.settings.index_dir
        return Path(remembered) if remembered and Path(remembered).exists() else app.DEMO_INDEX

    def open_library(self, index_dir: Path, then_query=None, remember: bool = False) -> None:
        """Load an index and its encoder in the background (the model takes a second or two)."""
        self.say(f"opening the library index {index_dir}…")
        self._set_busy(True)
        self.tasks.submit(lambda: self.bench.open(index_dir),
                          lambda s: self._library_opened(s, then_query, remember),
                          lambda exc: self._library_failed(index_dir, exc))

    def _library_opened(self, session: app.QviSession, then_query, remember: bool) -> None:
        self._set_busy(False)
        search_again = self.bench.opened(session)
        cats = session.categories()
        self._show_category_counts(cats)
        self.filter_row.forget_counts()                # this library's come soon
        self._facets_shown = None
        self._show_filters()
        self.results.show([], {})
        self.first_run.show_library(len(session.index), cats)
        self.stop_playing()
        self.spectrograms.show("result", None, "Result: select one in the list")
        self.spectrograms.show_wave(None, 0)
        self._show_notice()
        self.say(self.bench.status_line())
        self.root.title(f"qvi — {library_name(session.index_dir, session.library_root)}")
        gone = session.library_gone()
        if gone:
            self.error(gone[0].upper() + gone[1:], "Open library folder…", self.open_library_dialog)
        outdated = session.index_outdated()
        if outdated and not self.banner.text:
            self.banner.show(outdated + ".", "Index again", lambda: self.rebuild(session.index_dir), note=True)
        log.info("ready: %d sounds, model %s", len(session.index), session.model_id)
        if remember:
            self.settings.index_dir = None if session.index_dir == app.DEMO_INDEX else str(session.index_dir)
            self._save_settings()
        # The embeddings' checksum is read in the background: damage that search cannot see is reported.
        self.tasks.submit(session.index.verify, lambda problem: self._verified(session, problem), lambda exc: None)
        self.tasks.submit(session.library_changes, lambda changes: self._library_checked(session, changes),
                          lambda exc: log.info("could not compare the library with its index: %s", exc))
        if then_query:
            self.open_query(Path(then_query))
        elif search_again:                      # the query on screen, searched in the new library
            q = self.bench.query
            self.search(q.wave, q.sr, q.label)
        else:
            self.spectrograms.show_no_query()
            self._show_list(False)
            if self.bench.filters != NO_FILTERS:          # words kept from the library before: listed here
                self.rerank()

    def _verified(self, session, problem: str | None) -> None:
        if problem and session is self.session:
            self.error(problem, "Rebuild index", lambda: self.rebuild(session.index_dir))

    def _library_checked(self, session, changes) -> None:
        """Sounds added, changed or removed since the library was indexed (found in the
        background): offered as an update, which embeds only those. A message already shown
        (a problem) is not covered."""
        if not changes or session is not self.session or self._cancel_indexing is not None or self.banner.text:
            return
        self.banner.show(f"The library changed since it was indexed ({changes.summary()}): update the index "
                         "to search what is there now.", "Update index", lambda: self.rebuild(session.index_dir),
                         note=True)

    def _library_failed(self, index_dir: Path, exc: BaseException) -> None:
        self._set_busy(False)
        n = self.bench.library_failed(index_dir, exc)
        if n.action == "Rebuild index":
            self.error(n.text, n.action, lambda: self.rebuild(index_dir))
        else:
            self.message = n.text
            self.banner.show(n.text)
        self.say("no library open")

    def rebuild(self, index_dir: Path) -> None:
        probe = app.ReferenceIndex.open(index_dir)
        self.index_folder(probe.library_root, index_dir, probe.meta["encoder_name"])

    def open_library_dialog(self) -> None:
        folder = ask_folder(self.root, self.settings.last_folder or str(Path.home()))
        if folder:
            self.use_folder(Path(folder))

    def use_folder(self, folder: Path) -> None:
        self._remember_folder(str(folder))
        self.index_folder(folder)

    def index_folder(self, folder: Path, index_dir: Path | None = None, encoder: str = app.DEFAULT_ENCODER) -> None:
        """Index (or update) a folder in the background, with progress and a Cancel button."""
        if self._cancel_indexing is not None:
            self.error("A library is already being indexed; wait for it or cancel it first.")
            return
        index_dir = index_dir or app.default_index_dir(folder, encoder)
        cancel = self._cancel_indexing = threading.Event()
        self._time_left = TimeLeft(self.bench.clock)
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
        left = self._time_left(done, total)
        eta = f" · {say_duration(left)} left" if left else ""
        self.say(f"indexing {done}/{total}{eta}: {name}" if name else f"indexing: writing the index ({total} sounds)")

    def _end_indexing(self) -> None:
        self._cancel_indexing = None
        self.index_progress.pack_forget()
        self.index_cancel.pack_forget()

    def _indexing_done(self, report, index_dir: Path) -> None:
        self._end_indexing()
        self.bench.indexed(report.skipped + report.unread)
        self._show_notice()
        self.open_library(index_dir, remember=True)

    def _indexing_failed(self, exc: BaseException) -> None:
        self._end_indexing()
        if isinstance(exc, app.IndexingCancelled):
            self.say(f"{exc}.  " + self.bench.status_line())
        else:
            self._failed(exc, "Indexing failed: ")

    def cancel_indexing(self) -> None:
        if self._cancel_indexing is not None:
            self._cancel_indexing.set()

    def fill_libraries(self) -> None:
        """Every library indexed on this computer and the demo library; the open one is marked."""
        menu = self.libraries_menu
        menu.delete(0, "end")
        current = self.session.index_dir if self.session is not None else None
        libraries = app.known_libraries()
        for known in libraries:
            name = library_name(known.index_dir, known.library)
            gone = "" if known.library.is_dir() else ", folder not found"
            menu.add_command(label=f"{'✓' if known.index_dir == current else '  '} {name}  ({counted(known.sounds, 'sound')}"
                                   f"{gone})  {known.library}",
                             command=lambda d=known.index_dir: self.open_library(d, remember=True))
        if not hasattr(self, "forget_menu"):                 # made once, filled each time
            self.forget_menu = tk.Menu(menu, tearoff=False)
        forget = self.forget_menu
        forget.delete(0, "end")
        for known in libraries[:-1]:                         # not the demo library's
            forget.add_command(label=f"{library_name(known.index_dir, known.library)}  ({known.sounds:,} sounds)  "
                                     f"{known.library}",
                               command=lambda k=known: self.forget_library(k))
        menu.add_separator()
        menu.add_cascade(label="Forget a library's index", menu=forget,
                         state="normal" if len(libraries) > 1 else "disabled")

    def forget_library(self, known: app.KnownLibrary) -> None:
        """Delete a library's index, once confirmed (its sounds are not touched); the demo library
        opens in place of the open one."""
        if self._cancel_indexing is not None:
            self.error("A library is being indexed; wait for it or cancel it first.")
            return
        if not messagebox.askyesno("Forget a library's index", (
                f"Forget the index of {known.library} ({known.sounds:,} sounds)?\n\nIt is deleted from this "
                "computer; the sounds themselves are not touched. Opening the folder again indexes it again."),
                parent=self.root):
            return
        was_open = self.session is not None and self.session.index_dir.resolve() == known.index_dir.resolve()
        self.tasks.submit(lambda: app.forget_library(known.index_dir),
                          lambda done: self._library_forgotten(*done, was_open),
                          lambda exc: self._failed(exc, "The index cannot be forgotten: "))

    def _library_forgotten(self, gone, freed: int, was_open: bool) -> None:
        self.bench.forgotten(gone, freed)
        self._show_notice()
        if was_open or Path(self.settings.index_dir or "") in {k.index_dir for k in gone}:
            self.open_library(app.DEMO_INDEX, remember=True)
