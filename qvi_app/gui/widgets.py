"""The window's building blocks: level meter, results table, spectrograms and waveform, message
banner, tooltip, first-run panel."""

from __future__ import annotations

import tkinter as tk
from tkinter import font as tkfont
from tkinter import ttk

import matplotlib
import numpy as np

matplotlib.use("TkAgg")
from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.widgets import SpanSelector  # noqa: E402

from qvi_app.app import PART_MIN_S  # noqa: E402
from qvi_app.errors import counted  # noqa: E402
from qvi_app.features.display import DisplaySpectrogram  # noqa: E402  (a data class; nothing is computed here)
from qvi_app.gui.timeview import PAN_SHARE, WHEEL_FACTOR, TimeView  # noqa: E402
from qvi_app.index import SearchHit  # noqa: E402

RATING_TEXT = {1: "▲ up", -1: "▼ down", 0: ""}
#: The frequencies named on the spectrograms' vertical axis.
HZ_TICKS = ((250, "250"), (500, "500"), (1000, "1k"), (2000, "2k"), (4000, "4k"), (8000, "8k"))


def ui_scale(widget) -> float:
    """How many times larger than at 96 dpi the screen draws text (Tk sizes fonts by the screen's
    dpi); pixel sizes are multiplied by it. 1 up to 110 dpi (Xvfb's 100 among them), so that a
    screen near 96 dpi keeps the sizes the window was laid out with."""
    dpi = widget.winfo_fpixels("1i")
    return dpi / 96 if dpi > 110 else 1.0


class LevelMeter(tk.Canvas):
    """A horizontal input-level bar from -60 to 0 dBFS: green, amber near the top, red when clipping."""

    FLOOR_DB = -60.0

    def __init__(self, master, width=160, height=14):
        width, height = round(width * ui_scale(master)), round(height * ui_scale(master))
        super().__init__(master, width=width, height=height, highlightthickness=1, highlightbackground="#9aa0a6",
                         background="#202124")
        self._bar = self.create_rectangle(0, 0, 0, height, width=0, fill="#34a853")
        self.level_db = self.FLOOR_DB

    def show(self, level_db: float) -> None:
        self.level_db = max(self.FLOOR_DB, min(0.0, level_db))
        w, h = int(self["width"]), int(self["height"])
        frac = (self.level_db - self.FLOOR_DB) / -self.FLOOR_DB
        colour = "#34a853" if self.level_db < -12 else "#fbbc04" if self.level_db < -1 else "#ea4335"
        self.coords(self._bar, 0, 0, int(frac * w), h)
        self.itemconfigure(self._bar, fill=colour)


def _sound_text(hit: SearchHit) -> str:
    """A result's Sound cell: its file name, and the file's own description after it (a field
    recorder's ZOOM0042.WAV says nothing; "ZOOM0042.WAV · iron gate slam" does)."""
    return f"{hit.path.name} · {hit.description}" if hit.description else hit.path.name


#: What a heading's numbers mean, said when the pointer rests on it (a score of -0.12 is not "bad").
HEADING_TIPS = {
    "score": ("How close the sound is to the imitation (after More like this: to that sound): the cosine of "
              "their embeddings, less how close the sound sits to imitations of other sounds, so that sounds "
              "that come back for any imitation rank lower. Higher is closer; it compares the sounds of one "
              "list, not one list with another. A click sorts by it."),
    "rating": "Your rating for this imitation: ▲ good (+), ▼ poor (-); the list re-ranks at once. A click sorts by it.",
}


class ResultsTable(ttk.Frame):
    """Ranked results: rank, name, category, duration, score, rating; the playing row is marked.

    Columns sort by a click on their heading (again: the other way); long names end in "…"
    and the full path (and the file's description) shows in a tooltip."""

    # Each column with the widest text it shows, its heading with a sort arrow included: widths are
    # measured in the fonts they are drawn in. Pixel widths set for 96 dpi cut ranks from 10 on,
    # lengths, scores and ratings at 192 dpi, and "Length ▲" (71 px in bold) even at 96.
    COLUMNS = (("play", "", "▶"), ("rank", "#", "200"), ("name", "Sound", None), ("category", "Category", None),
               ("duration", "Length", "600.0 s"), ("score", "Score", "-0.000"), ("rating", "Rating", RATING_TEXT[-1]))
    SORT_KEYS = {"rank": lambda h: h.rank, "name": lambda h: h.path.name.lower(), "category": lambda h: h.category,
                 "duration": lambda h: h.duration, "score": lambda h: -h.score, "rating": lambda h: -h.rating}

    def __init__(self, master):
        super().__init__(master)
        self.tree = ttk.Treeview(self, columns=[c[0] for c in self.COLUMNS], show="headings",
                                 selectmode="extended", height=18)      # Ctrl/Shift+click: several to copy or drag
        self._font = tkfont.nametofont("TkDefaultFont")
        self._pad = self._font.measure("0")                 # a digit's width: room around a cell's text
        heading = tkfont.nametofont("TkHeadingFont")
        # The Sound column keeps 16 digits' width at least (144 px under Xvfb); Category fits the
        # categories shown between its heading's width and twice that (see _fit_categories).
        least = heading.measure("Category ▼") + self._pad
        self.category_width = (least, 2 * least)
        for key, title, sample in self.COLUMNS:
            self.tree.heading(key, text=title, command=lambda k=key: self.sort_by(k))
            anchor = "w" if key in ("name", "category") else "e" if key in ("duration", "score", "rank") else "center"
            if key == "name":
                width, least = 24 * self._pad, 16 * self._pad
            elif key == "category":
                width = least = self.category_width[0]
            else:
                arrow = " ▼" if title and key != "rank" else ""
                width = least = max(heading.measure(title + arrow), self._font.measure(sample)) + self._pad
            self.tree.column(key, width=width, minwidth=least, anchor=anchor, stretch=key == "name")
        scroll = self._scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)
        self.tree.tag_configure("playing", background="#d2e3fc")
        self.tree.tag_configure("liked", foreground="#137333")
        self.tree.tag_configure("disliked", foreground="#a50e0e")
        self.hits: list[SearchHit] = []
        self.sorted_by: tuple[str, bool] = ("rank", False)
        self._tip = Tooltip(self.tree, self._tip_text)
        self._fit_width = 0
        self._last_selection: set[str] = set()
        self.tree.bind("<Configure>", lambda e: self.after_idle(self._resized), add="+")
        self.tree.bind("<ButtonRelease-1>", lambda e: self.after_idle(self._refresh_names), add="+")

    def show(self, hits: list[SearchHit], ratings: dict[str, int] | None = None) -> None:
        """Show ``hits``; a hit's rating is its own (a re-ranked list) or the one in ``ratings``."""
        ratings = ratings or {}
        self.hits = [h if h.rating or h.relpath not in ratings else _with_rating(h, ratings[h.relpath]) for h in hits]
        self.sorted_by = ("rank", False)
        self._fit_categories()
        self._fit_columns()
        self._fill()

    def _fit_categories(self) -> None:
        """The Category column as wide as the longest category shown (at a fixed 100 px the demo
        list showed "tools_machin" and "farm_animal"), within ``category_width``; the room is taken
        from the Sound column, down to its minimum, and given back when the categories are short
        again."""
        want = max((self._font.measure(h.category) for h in self.hits), default=0) + 2 * self._pad
        now = int(self.tree.column("category", "width"))
        name = int(self.tree.column("name", "width"))
        change = min(max(want, self.category_width[0]), self.category_width[1]) - now
        change = min(change, name - int(self.tree.column("name", "minwidth")))
        if change:
            self.tree.column("category", width=now + change)
            self.tree.column("name", width=name - change)

    def _fit_columns(self) -> None:
        """The Sound column narrowed, down to its minimum, while the columns are wider than the
        list: Tk widens a stretching column with the list but left it wide when the list shrank,
        and the Rating column was cut off (by 8 px on a 1024x600 screen, 37 px at the window's
        minimum size)."""
        width = self.tree.winfo_width() - 4                 # less the list's border
        if width < 100:                                     # not laid out yet
            return
        excess = sum(int(self.tree.column(c, "width")) for c in self.tree["columns"]) - width
        name = int(self.tree.column("name", "width"))
        if excess > 0 and name > (least := int(self.tree.column("name", "minwidth"))):
            self.tree.column("name", width=max(least, name - excess))

    def needed_width(self) -> int:
        """The width that shows every column whole with the Sound column at its narrowest."""
        others = sum(int(self.tree.column(c, "width")) for c in self.tree["columns"] if c != "name")
        return others + int(self.tree.column("name", "minwidth")) + self._scroll.winfo_reqwidth() + 4

    def _resized(self) -> None:
        self._fit_columns()
        self._refresh_names()

    def sort_by(self, key: str) -> None:
        if key not in self.SORT_KEYS:
            return
        reverse = self.sorted_by == (key, False)
        self.sorted_by = (key, reverse)
        selected, picked = self.selected(), {h.relpath for h in self.selected_all()}
        self.hits.sort(key=self.SORT_KEYS[key], reverse=reverse)
        self._fill()
        if selected is not None:
            self.tree.selection_set([str(i) for i, h in enumerate(self.hits) if h.relpath in picked])
            iid = str(next(i for i, h in enumerate(self.hits) if h.relpath == selected.relpath))
            self.tree.focus(iid)
            self.tree.see(iid)
        self._last_selection = set(self.tree.selection())

    def _fill(self) -> None:
        self._fit_width = int(self.tree.column("name", "width"))
        self.tree.delete(*self.tree.get_children())
        for i, h in enumerate(self.hits):
            tags = ("liked",) if h.rating > 0 else ("disliked",) if h.rating < 0 else ()
            self.tree.insert("", "end", iid=str(i), tags=tags, values=(
                "", h.rank, self._fit(_sound_text(h)), h.category, f"{h.duration:.1f} s", f"{h.score:.3f}" if np.isfinite(h.score) else "",
                RATING_TEXT[h.rating]))
        for key, title, _ in self.COLUMNS:
            arrow = (" ▼" if self.sorted_by[1] else " ▲") if self.sorted_by[0] == key and key != "rank" else ""
            self.tree.heading(key, text=title + arrow)

    def _fit(self, name: str) -> str:
        """The name cut to the Sound column's width, ending in "…" (the tooltip has all of it)."""
        room = int(self.tree.column("name", "width")) - self._pad - 3
        if self._font.measure(name) <= room:
            return name
        lo, hi = 1, len(name)
        while lo < hi:                                   # the longest prefix that fits with "…"
            mid = (lo + hi + 1) // 2
            lo, hi = (mid, hi) if self._font.measure(name[:mid] + "…") <= room else (lo, mid - 1)
        return name[:lo] + "…"

    def _refresh_names(self) -> None:
        width = int(self.tree.column("name", "width"))
        if width == self._fit_width:
            return
        self._fit_width = width
        for iid in self.tree.get_children():
            self.tree.set(iid, "name", self._fit(_sound_text(self.hits[int(iid)])))

    def _tip_text(self, x: int, y: int) -> str | None:
        if self.tree.identify_region(x, y) == "heading":   # "#5" is the fifth shown: Tk names its id
            return HEADING_TIPS.get(self.tree.column(self.tree.identify_column(x), "id"))
        row = self.tree.identify_row(y)
        if not row:
            return None
        hit = self.hits[int(row)]
        return f"{hit.path}\n{hit.description}" if hit.description else str(hit.path)

    def _current(self) -> str | None:
        """The row last clicked or moved to, when it is selected; else the first selected one."""
        sel, focus = self.tree.selection(), self.tree.focus()
        return focus if focus in sel else sel[0] if sel else None

    def selected(self) -> SearchHit | None:
        """The result of the row last clicked or moved to (see _current)."""
        iid = self._current()
        return self.hits[int(iid)] if iid is not None else None

    def selected_all(self) -> list[SearchHit]:
        """Every selected row (Ctrl/Shift+click pick several), in the list's order."""
        order = {iid: i for i, iid in enumerate(self.tree.get_children())}
        return [self.hits[int(iid)] for iid in sorted(self.tree.selection(), key=order.__getitem__)]

    def select_all(self) -> None:
        """Every row selected (Ctrl+A), to copy or drag out at once; nothing plays, and the row
        last picked stays the one the other keys act on."""
        rows = self.tree.get_children()
        self._last_selection = set(rows)        # no row "added": selecting all is not a pick to hear
        self.tree.selection_set(rows)

    def selection_added(self) -> SearchHit | None:
        """The row a selection change is about, made the focus row (Tk's Ctrl+click adds a row
        without moving the focus to it): the row gained, or of several gained (Shift+click) the
        one farthest from the focus row, which is the one clicked; else a row selected alone
        (clicked again: heard again). None when a row was Ctrl+clicked out of several: no reason
        to play anything."""
        now = set(self.tree.selection())
        added, self._last_selection = now - self._last_selection, now
        if not added:
            added = now if len(now) == 1 else set()
        if not added:
            return None
        order = {iid: i for i, iid in enumerate(self.tree.get_children())}
        anchor = order.get(self.tree.focus(), 0)
        iid = max(added, key=lambda a: (abs(order[a] - anchor), order[a]))
        self.tree.focus(iid)
        return self.hits[int(iid)]

    def step(self, step: int) -> None:
        """Select the row ``step`` rows below (above, when negative) the selected one (of several,
        the one last picked), alone: as the list's own arrow keys do."""
        rows = self.tree.get_children()
        if not rows:
            return
        here = self._current()
        at = rows.index(here) + step if here is not None else 0
        iid = rows[max(0, min(at, len(rows) - 1))]
        self.tree.selection_set(iid)
        self.tree.focus(iid)
        self.tree.see(iid)

    def set_rating(self, hit: SearchHit, rating: int) -> None:
        for iid in self.tree.get_children():
            if self.hits[int(iid)].relpath == hit.relpath:
                self.tree.set(iid, "rating", RATING_TEXT[rating])

    def mark_playing(self, hit: SearchHit | None) -> None:
        for iid in self.tree.get_children():
            h = self.hits[int(iid)]
            on = hit is not None and h.relpath == hit.relpath
            self.tree.set(iid, "play", "▶" if on else "")
            base = ("liked",) if h.rating > 0 else ("disliked",) if h.rating < 0 else ()
            self.tree.item(iid, tags=base + (("playing",) if on else ()))

    def row_values(self) -> list[dict]:
        """What the table shows, row by row (used by tests and the screenshot check)."""
        keys = [c[0] for c in self.COLUMNS]
        return [dict(zip(keys, self.tree.item(iid, "values"))) for iid in self.tree.get_children()]


def _with_rating(hit: SearchHit, rating: int) -> SearchHit:
    from dataclasses import replace

    return replace(hit, rating=rating)


class Tooltip:
    """A small label near the pointer after it rests on a widget; ``text(x, y)`` says what (None: nothing)."""

    def __init__(self, widget, text, delay_ms: int = 600):
        self.widget, self.text, self.delay_ms = widget, text, delay_ms
        self._after = None
        self._win = None
        widget.bind("<Motion>", self._moved, add="+")
        widget.bind("<Leave>", lambda e: self._hide(), add="+")

    def _moved(self, event) -> None:
        self._hide()
        self._after = self.widget.after(self.delay_ms, lambda: self._show(event.x, event.y, event.x_root, event.y_root))

    def _show(self, x, y, x_root, y_root) -> None:
        text = self.text(x, y)
        if not text:
            return
        self._win = tk.Toplevel(self.widget)
        self._win.wm_overrideredirect(True)
        self._win.wm_geometry(f"+{x_root + 12}+{y_root + 12}")
        tk.Label(self._win, text=text, background="#ffffe0", relief="solid", borderwidth=1, padx=4).pack()

    def _hide(self) -> None:
        if self._after is not None:
            self.widget.after_cancel(self._after)
            self._after = None
        if self._win is not None:
            self._win.destroy()
            self._win = None


class FirstRun(ttk.Frame):
    """What to do, before the first search (an empty list and two black plots looked broken)."""

    def __init__(self, master):
        super().__init__(master, padding=24)
        self.title = ttk.Label(self, text="Find a sound by imitating it", font=("TkDefaultFont", 15, "bold"))
        self.title.pack(anchor="w")
        self.body = ttk.Label(self, justify="left", wraplength=round(520 * ui_scale(master)))
        self.body.pack(anchor="w", pady=(10, 0))

    def show_library(self, sounds: int, categories: dict[str, int]) -> None:
        if sounds == 0:
            self.body.configure(text=(
                "This library has no sounds yet: qvi found no sound files in its folder.\n\n"
                "Add sound files to it (or to folders inside it), then open it again with File ▸ Open "
                "library folder… (Ctrl+L) or drop it on the window; or choose another in File ▸ Libraries."))
            return
        cats = ", ".join(list(categories)[:12]) + (" …" if len(categories) > 12 else "")
        self.body.configure(text=(
            "1.  Press Space (or ● Record) and make the sound with your voice: a siren rising, a bee, "
            "\"vrrooom\", a door creak.\n2.  Stop: recording ends by itself 2 s later (or press Space), "
            "and the closest sounds appear here; select one to hear it.\n"
            "3.  ▲ / ▼ (keys + and -) tell qvi what fits: the list re-ranks at once. Category, Name "
            "contains and Length narrow it, without recording again.\n\n"
            # The room and the level were measured on real imitations (docs/TRAINING.md rows 62-63).
            "For the closest matches: a quiet room, the meter out of the red (a clipped take finds its "
            "sound a quarter less often), one take per recording (or drag across the query to search a "
            "part).\n\n"
            "Or open a sound file as the query (Ctrl+O), or drop one on the window (a phone's voice memo "
            "too, as it is); drop a folder to search it instead. Or type words in Name contains (Ctrl+F), "
            "or pick a category, to list the sounds they keep.\n\n"
            f"This library: {counted(sounds, 'sound')} in {counted(len(categories), 'category', 'categories')} "
            f"({cats})."))


class SpectrogramPanel(ttk.Frame):
    """The query's and the selected result's spectrograms, each on its own time axis (a 5.8 s query
    beside a 3.7 s result was cut at 3.7 s on a shared one), and under them the result's waveform
    with a playhead (:class:`WaveformView`): a click on it plays from there, a drag across it hands
    that part of the result to ``on_select_part``. A drag across the query's spectrogram hands the
    part selected (its start and end, seconds) to ``on_select_query``. The mouse wheel over the
    result's spectrogram or its waveform zooms both alike (:meth:`set_view`); over the query's,
    that one (a part of a long query is then dragged across what is seen)."""

    def __init__(self, master, on_seek=None, on_select_query=None, on_select_part=None):
        super().__init__(master)
        self.on_select_query = on_select_query
        self._span = None
        self._match_spans = []                          # where the query matches, outlined on the result
        self._ends = {"query": 0.0, "result": 0.0}      # each spectrogram's right end, seconds
        self.query_view = TimeView.whole(0.0)           # the stretch of the query shown
        self.figure = Figure(figsize=(5.2, 4.4), dpi=100, layout="constrained")
        self.ax_query = self.figure.add_subplot(2, 1, 1)
        self.ax_result = self.figure.add_subplot(2, 1, 2, sharey=self.ax_query)
        self.on_select_part = on_select_part
        # Shown while a part is selected: dragged (a drag source, see the window), it carries the
        # part out as a file of its own; the waveform's own drags select.
        self.part_handle = ttk.Label(self, text="⇲ drag this part out (or Ctrl+S to save it)", style="Status.TLabel",
                                     cursor="fleur")
        self.wave = WaveformView(self, on_seek=on_seek, on_select=self._part_changed, on_view=self.set_view)
        self.wave.pack(side="bottom", fill="x", padx=(6, 6), pady=(2, 4))     # first: a short window keeps it
        self.canvas = FigureCanvasTkAgg(self.figure, master=self)
        self.canvas.get_tk_widget().pack(fill="both", expand=True)
        self.canvas.mpl_connect("draw_event", self._align_wave)
        self.canvas.mpl_connect("scroll_event", self._scrolled)
        self.titles = {"query": "", "result": ""}
        self.show_no_query()
        self.show("result", None, "Result: select one in the list")

    def show_no_query(self) -> None:
        """The query's plot before there is a query (or for a list made without one)."""
        self.show("query", None, "Query: press Space and imitate a sound")

    def show(self, which: str, spec: DisplaySpectrogram | None, title: str, about: tuple[str, ...] = ()) -> None:
        """Plot ``spec`` under ``title``; ``about`` (the file's format, a licence) goes by the
        time axis's name, its last part on a line of its own when one line has no room."""
        ax = self.ax_query if which == "query" else self.ax_result
        ax.clear()
        if which == "result":
            self._match_spans = []                  # cleared with the plot
        else:
            self.query_view = TimeView.whole(spec.duration if spec is not None else 0.0)
        self._ends[which] = spec.extent[1] if spec is not None else 0.0
        self.titles[which] = title
        self._fit_title(ax.set_title(title, fontsize=9, loc="left"))
        ax.set_ylabel("Hz", fontsize=8)
        ax.tick_params(labelsize=7)
        selectable = which == "query" and spec is not None
        xlabel = "seconds · drag across it to search a part" if selectable else "seconds"
        label = ax.set_xlabel(" · ".join((xlabel, *about)), fontsize=8)
        if len(about) > 1 and self._too_wide(label):
            label.set_text(" · ".join((xlabel, *about[:-1])) + "\n" + about[-1])
        self._fit_title(label, keep_end=False)
        if spec is not None:
            ax.set_facecolor("#000004")
            ax.imshow(spec.db, origin="lower", aspect="auto", extent=spec.extent, vmin=-80, vmax=0,
                      cmap="magma", interpolation="nearest")
            # Hertz, not band numbers, on the mel scale the plot is drawn in (a sound designer
            # reads "a hiss above 4k"; "band 50" told nothing).
            ticks = [(spec.band_at(hz), label) for hz, label in HZ_TICKS if hz < spec.f_max]
            ax.set_yticks([y for y, _ in ticks], [label for _, label in ticks])
        else:
            ax.set_facecolor("#f1f3f4")
            ax.set_xticks([])
            ax.set_yticks([])
        if which == "query":
            self._selectable(selectable)
        self.canvas.draw_idle()

    def _fit_title(self, text, keep_end: bool = True) -> None:
        """A title too wide for the panel (a long file name) shortened in the middle, where a name
        says least: its start and its end (take numbers, the extension) stay. Without
        ``keep_end``, each line is cut at its end (facts, the least of them last), the longest
        first."""
        def shortened(line: str, n: int) -> str:
            if n >= len(line):
                return line
            return line[:n // 2] + "…" + line[len(line) - (n - n // 2):] if keep_end else line[:n] + "…"

        lines = text.get_text().split("\n")
        keep = [len(line) for line in lines]
        while self._too_wide(text):
            i = max(range(len(lines)), key=keep.__getitem__)
            if keep[i] <= 24:
                return
            keep[i] -= 3
            text.set_text("\n".join(shortened(line, n) for line, n in zip(lines, keep)))

    def _too_wide(self, text) -> bool:
        """Wider than the figure less half an inch, where the axis's name and numbers go (45 px at
        the window's 104 dpi): the axes' own position is the previous plot's until the layout is
        drawn again, and an empty plot has no numbers."""
        room = self.figure.bbox.width - 0.5 * self.figure.dpi - 4
        return text.get_window_extent(self.figure.canvas.get_renderer()).width > room

    def _selectable(self, on: bool) -> None:
        """A span selector on the query's plot, made again for each query: ``ax.clear()`` takes
        away the artists of the one before."""
        if self._span is not None:
            self._span.disconnect_events()
            self._span = None
        if on and self.on_select_query is not None:
            self._span = SpanSelector(self.ax_query, self._query_selected, "horizontal", minspan=PART_MIN_S,
                                      useblit=False, props={"facecolor": "#8ab4f8", "alpha": 0.35})

    def _query_selected(self, start_s: float, end_s: float) -> None:
        if end_s - start_s >= PART_MIN_S:                   # a click (or a twitch) is not a selection
            self.on_select_query(start_s, end_s)

    def show_wave(self, wave, sr: int) -> None:
        self.wave.show(wave, sr)

    def _part_changed(self, part: tuple[float, float] | None) -> None:
        if part is None:
            self.part_handle.pack_forget()
            return
        self.part_handle.pack(side="bottom", anchor="e", padx=6, before=self.wave)
        if self.on_select_part:
            self.on_select_part(*part)

    def move_playhead(self, seconds: float | None) -> None:
        self.wave.move_playhead(seconds)

    def show_match(self, match, finding: bool = False) -> None:
        """Where the query matches in the result shown (a Match), outlined on its waveform and on
        its spectrogram alike; or, with ``finding``, that it is being found."""
        self.wave.show_match(match, finding)
        for span in self._match_spans:
            span.remove()
        # the best boldly, the other places J goes to dashed
        self._match_spans = [self.ax_result.axvspan(start, end, fill=False, edgecolor="#e8710a",
                                                    linewidth=2 if k == 0 else 1, linestyle="-" if k == 0 else "--")
                             for k, (start, end) in enumerate(self.wave.places)]
        self.canvas.draw_idle()

    @property
    def view(self) -> TimeView:
        """The stretch of the result shown."""
        return self.wave.view

    def set_view(self, view: TimeView) -> None:
        """Show ``view``'s stretch of the result on its spectrogram and its waveform alike."""
        self.wave.set_view(view)
        self._limit("result", view)

    def set_query_view(self, view: TimeView) -> None:
        """Show ``view``'s stretch of the query on its spectrogram."""
        self.query_view = view
        self._limit("query", view)

    def _limit(self, which: str, view: TimeView) -> None:
        if not self._ends[which]:
            return
        # The whole sound as the plot first showed it: the spectrogram's last frame ends a little
        # after the sound does.
        ax = self.ax_query if which == "query" else self.ax_result
        ax.set_xlim((0.0, self._ends[which]) if view.is_whole else (view.start, view.end))
        self.canvas.draw_idle()

    def _scrolled(self, event) -> None:
        """The wheel over a spectrogram: the result's as over its waveform, the query's alone."""
        if event.inaxes is self.ax_result:
            view, show = self.view, self.set_view
        elif event.inaxes is self.ax_query:
            view, show = self.query_view, self.set_query_view
        else:
            return
        if not view.total or event.xdata is None:
            return
        back = event.step > 0
        if event.key == "shift":
            show(view.panned(-PAN_SHARE if back else PAN_SHARE))
        else:
            show(view.zoomed(event.xdata, WHEEL_FACTOR ** event.step))

    def _align_wave(self, _event=None) -> None:
        """The waveform's time axis under the result plot's (the layout moves that one with the
        plot's numbers and the window's width; the waveform had its own, up to a tenth of the sound off)."""
        box = self.ax_result.get_window_extent()
        offset = self.canvas.get_tk_widget().winfo_x() - self.wave.winfo_x()
        self.wave.align(round(box.x0) + offset, round(box.x1) + offset)


class WaveformView(tk.Canvas):
    """A waveform on a plain Tk canvas: moving the playhead is one coords() call, not a figure redraw
    (redrawing the spectrogram figure at 20 Hz stalled the window for longer than a short sound).

    A click plays from there (``on_seek(seconds)``); a drag selects a part (``selection``, seconds,
    shaded); a click, or another sound, clears it. ``on_select(part)`` hears each change: the
    part (start, end), or None. In a long sound, where the query matches (:meth:`show_match`) is
    outlined, under a line of how well each stretch of it matches.

    It shows :attr:`view` (a :class:`~qvi_app.gui.timeview.TimeView`): the mouse wheel zooms
    around the pointer, Shift+wheel moves along; each change goes to ``on_view`` (the panel shows
    the spectrogram above at the same stretch) or, without one, to :meth:`set_view`."""

    DRAG_PX = 4                                  # less is a click, not a selection
    #: The sound is kept as the peaks of 1 ms blocks: a ten-minute recording in 2.4 MB, and the
    #: narrowest view (0.1 s) still 100 of them.
    PEAK_S = 0.001
    #: At most this many peaks are drawn, whatever the view (a polygon of 2,400 points).
    POINTS = 1200

    def __init__(self, master, on_seek=None, on_select=None, on_view=None, height: int = 56):
        super().__init__(master, height=round(height * ui_scale(master)), background="#f8f9fa", highlightthickness=0,
                         cursor="hand2")
        self.on_seek = on_seek
        self.on_select = on_select
        self.on_view = on_view
        self.seconds = 0.0
        self.view = TimeView.whole(0.0)
        self.selection: tuple[float, float] | None = None
        self._peaks = None                            # the louder channel's peak in each PEAK_S block
        self._peak_s = self.PEAK_S
        self._head = None
        self._head_seen = False                       # the playhead was in view at its last move
        self._press_x: int | None = None
        self._span: tuple[int, int] | None = None     # the pixels of 0 s and of the end; None: the edges
        self.match = None                             # where the query matches (ranking.where.Match)
        self.places: list[tuple[float, float]] = []   # its places, best first (J goes through them)
        self.finding = False                         # ... being found
        self.pitch_note = ""                          # how results play when not at their own pitch ("+3 st")
        self.bind("<Configure>", lambda e: self._draw())
        self.bind("<ButtonPress-1>", self._pressed)
        self.bind("<B1-Motion>", self._dragged)
        self.bind("<ButtonRelease-1>", self._released)
        # The wheel: on X11 (Tk 8.6) buttons 4 and 5 (up, down) and 6 and 7 (left, right, which
        # Tk 8.6 will not name in a binding); elsewhere, and in Tk 9, <MouseWheel>.
        self.bind("<Button>", self._wheel)
        self.bind("<MouseWheel>", self._wheel)

    def show(self, wave, sr: int) -> None:
        import numpy as np

        self._select(None)
        self.match, self.finding, self.places = None, False, []
        if wave is None or not sr or not len(wave):
            self.seconds, self._peaks = 0.0, None
        else:
            self.seconds = len(wave) / sr
            peak = np.abs(np.asarray(wave))
            peak = peak.max(axis=1) if peak.ndim == 2 else peak              # a stereo sound: the louder channel
            step = max(1, min(round(sr * self.PEAK_S), len(peak)))
            self._peaks = peak[: len(peak) // step * step].reshape(-1, step).max(axis=1)
            self._peak_s = step / sr
        self.view = TimeView.whole(self.seconds)
        self._draw()

    def show_pitch(self, note: str) -> None:
        """Say in the caption at which pitch the sound plays ("" when at its own)."""
        self.pitch_note = note
        self._draw()

    def set_view(self, view: TimeView) -> None:
        """Show ``view``'s stretch of the sound (the playhead, the part and the match with it)."""
        self.view = view
        self._draw()

    def _shown_peaks(self):
        """The peaks of the stretch in view, at most :data:`POINTS` of them (the largest of each run)."""
        first = min(int(self.view.start / self._peak_s), len(self._peaks) - 1)
        last = max(first + 1, int(-(-self.view.end // self._peak_s)))
        seg = self._peaks[first:last]
        run = -(-len(seg) // self.POINTS)
        if run > 1:
            seg = seg[: len(seg) // run * run].reshape(-1, run).max(axis=1)
        return seg

    def _draw(self) -> None:
        self.delete("all")
        w, h = max(self.winfo_width(), 2), int(self["height"])
        if self._peaks is None:
            self.create_text(8, h // 2, anchor="w", fill="#80868b", text="the selected sound's waveform")
            self._head = self._shade = None
            return
        env = self._shown_peaks() / max(float(self._peaks.max()), 1e-9)      # heights re the whole sound's peak
        left, right = self._ends()
        xs = [int(left + i * (right - left) / max(len(env) - 1, 1)) for i in range(len(env))]
        points = [(x, h / 2 - e * (h / 2 - 3)) for x, e in zip(xs, env)] + \
                 [(x, h / 2 + e * (h / 2 - 3)) for x, e in zip(reversed(xs), env[::-1])]
        self._shade = self.create_rectangle(0, 0, 0, h, fill="#8ab4f8", outline="#1a73e8", state="hidden")
        self.create_polygon(*[c for p in points for c in p], fill="#1a73e8", outline="")
        v = self.view
        about = (f"{self.seconds:.1f} s · click: play · drag: a part · wheel: zoom" if v.is_whole else
                 f"{v.start:.2f}–{v.end:.2f} of {self.seconds:.1f} s · Shift+wheel: move · Z: all")
        if self.pitch_note:
            about = f"plays {self.pitch_note} · {about}"
        self._label(w - 4, h - 2, "se", "#5f6368", about)
        self._draw_match(w, h)
        self._head = self.create_line(0, 0, 0, h, fill="#d93025", width=2, state="hidden")
        if self.selection is not None:
            self._shade_seconds(*self.selection)

    def show_match(self, match, finding: bool = False) -> None:
        """Mark where the query matches (a Match of this sound), or say it is being found (with a
        match: its best place is, the others are still being found)."""
        self.match, self.finding = match, finding
        self.places = [] if match is None else [match.best] if finding else match.places()
        self._draw()

    def _draw_match(self, w: int, h: int) -> None:
        import numpy as np

        if self.match is None:
            if self.finding:
                self._label(4, 2, "nw", "#5f6368", "finding where it matches…")
            return
        m = self.match
        heard = np.isfinite(m.scores)                           # silent windows have no score
        low, high = (m.scores[heard].min(), m.scores[heard].max()) if heard.any() else (0.0, 1.0)
        band = h / 3                                            # how well each stretch matches: the top third
        seen = heard & (m.centres >= self.view.start) & (m.centres <= self.view.end)
        points = [(self._x(c), 2 + band * (1 - (v - low) / max(high - low, 1e-9)))
                  for c, v in zip(m.centres[seen], m.scores[seen])]
        if len(points) > 1:
            self.create_line(*[c for p in points for c in p], fill="#e8710a", width=1)
        for start, end in self.places[1:]:                     # the other places J goes to: thinner
            if self.view.overlaps(start, end):
                self.create_rectangle(self._x(start), 1, self._x(end), h - 1, outline="#e8710a", width=1,
                                      dash=(3, 2))
        start, end = m.best
        if self.view.overlaps(start, end):
            self.create_rectangle(self._x(start), 1, self._x(end), h - 1, outline="#e8710a", width=2)
        more = (" · finding more…" if self.finding else
                f" · J again: {len(self.places) - 1} more" if len(self.places) > 1 else "")
        self._label(4, 2, "nw", "#b06000", f"best match {start:.1f}–{end:.1f} s · J plays it{more}")

    def _label(self, x: int, y: int, anchor: str, colour: str, text: str) -> None:
        """Small text on a half-shaded backing: legible over the waveform and the part shaded."""
        label = self.create_text(x, y, anchor=anchor, fill=colour, font=("TkDefaultFont", 7), text=text)
        backing = self.create_rectangle(*self.bbox(label), fill=self["background"], outline="", stipple="gray50")
        self.tag_lower(backing, label)

    def select_part(self, part: tuple[float, float]) -> None:
        """Select ``part`` (start, end seconds) as a drag across it would: shaded, and heard."""
        self._select(part)
        self._shade_seconds(*part)

    def move_playhead(self, seconds: float | None) -> None:
        """The playhead at ``seconds`` (None: hidden). In a zoom, a playhead that runs off the
        right edge turns the page, as an editor follows playback; one that starts out of view
        (Enter from the start while zoomed on the end) leaves the view where it is."""
        if self._head is None:
            return
        seen, self._head_seen = self._head_seen, False
        if seconds is None or not self.seconds:
            self.itemconfigure(self._head, state="hidden")
            return
        v = self.view
        if seen and seconds > v.end and not v.is_whole:
            (self.on_view or self.set_view)(v.panned((seconds - v.start) / v.seconds))
            v = self.view
        if not v.start <= seconds <= v.end:
            self.itemconfigure(self._head, state="hidden")
            return
        self._head_seen = True
        x = int(self._x(seconds))
        self.coords(self._head, x, 0, x, int(self["height"]))
        self.itemconfigure(self._head, state="normal")

    def align(self, left: int, right: int) -> None:
        """Draw 0 s at pixel ``left`` and the end at ``right`` (the time axis of the plot above),
        so that a part is dragged and shaded where it is seen there."""
        if (left, right) != self._span:
            self._span = (left, right)
            self._draw()

    def _ends(self) -> tuple[int, int]:
        width = max(self.winfo_width(), 2)
        if self._span is None:
            return 0, width - 1
        left = max(0, min(self._span[0], width - 2))
        return left, max(left + 1, min(self._span[1], width - 1))

    def _x(self, seconds: float) -> float:
        """The pixel of ``seconds`` (at an edge, for a moment out of view)."""
        left, right = self._ends()
        v = self.view
        return left + (max(0.0, min((seconds - v.start) / v.seconds, 1.0)) if v.seconds > 0 else 0.0) * (right - left)

    def _at(self, x: int) -> float:
        left, right = self._ends()
        return self.view.start + max(0.0, min((x - left) / (right - left), 1.0)) * self.view.seconds

    def _wheel(self, event) -> None:
        """Zoom around the pointer (wheel), or move along (Shift+wheel, or a wheel's sideways tilt)."""
        button = getattr(event, "num", None)
        if not self.seconds or (button not in (4, 5, 6, 7) and not getattr(event, "delta", 0)):
            return                                                      # another button: not the wheel
        back = button in (4, 6) or (button not in (5, 7) and event.delta > 0)    # up, or left
        if button in (6, 7) or event.state & 0x1:                        # Shift
            view = self.view.panned(-PAN_SHARE if back else PAN_SHARE)
        else:
            view = self.view.zoomed(self._at(event.x), WHEEL_FACTOR if back else 1 / WHEEL_FACTOR)
        (self.on_view or self.set_view)(view)

    def _shade_seconds(self, start: float, end: float) -> None:
        self.coords(self._shade, self._x(start), 0, self._x(end), int(self["height"]))
        self.itemconfigure(self._shade, state="normal")

    def _pressed(self, event) -> None:
        self._press_x = event.x if self.seconds else None

    def _dragged(self, event) -> None:
        if self._press_x is not None and abs(event.x - self._press_x) >= self.DRAG_PX:
            self._shade_seconds(*sorted((self._at(self._press_x), self._at(event.x))))

    def _released(self, event) -> None:
        x0, self._press_x = self._press_x, None
        if x0 is None:
            return
        if abs(event.x - x0) < self.DRAG_PX:                      # a click: play from there
            self._select(None)
            self.itemconfigure(self._shade, state="hidden")
            if self.on_seek:
                self.on_seek(self._at(event.x))
            return
        self._select(tuple(sorted((self._at(x0), self._at(event.x)))))
        self._shade_seconds(*self.selection)

    def _select(self, part: tuple[float, float] | None) -> None:
        changed = part != self.selection
        self.selection = part
        if self.on_select and (changed or part is not None):   # a new drag over the same part plays it again
            self.on_select(part)


class MessageBanner(ttk.Frame):
    """A dismissible message line under the results, with an optional action button."""

    def __init__(self, master):
        super().__init__(master, padding=(8, 4), style="Banner.TFrame")
        self.label = ttk.Label(self, style="Banner.TLabel", wraplength=round(900 * ui_scale(master)), justify="left")
        self.label.pack(side="left", fill="x", expand=True)
        ttk.Button(self, text="✕", width=3, command=self.hide, style="Banner.TButton").pack(side="right")
        self.action = ttk.Button(self, style="Banner.TButton")
        self.text = ""

    def show(self, text: str, action_text: str | None = None, action=None, note: bool = False) -> None:
        """Show a message (``note``: information, not a problem); the window keeps the banner's
        row at its height, so nothing below moves."""
        self.text = text
        self.configure(style="Note.TFrame" if note else "Banner.TFrame")
        self.label.configure(text=text, style="Note.TLabel" if note else "Banner.TLabel")
        self.action.pack_forget()
        if action_text:
            self.action.configure(text=action_text, command=lambda: (self.hide(), action()))
            self.action.pack(side="right", padx=6)
        self.grid()

    def hide(self) -> None:
        self.text = ""
        self.grid_remove()
