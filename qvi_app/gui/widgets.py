"""The window's building blocks: level meter, results table, spectrogram panel, message banner."""

from __future__ import annotations

import tkinter as tk
from tkinter import ttk

import matplotlib

matplotlib.use("TkAgg")
from matplotlib.backends.backend_tkagg import FigureCanvasTkAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from qvi_app.features.display import DisplaySpectrogram  # noqa: E402  (a data class; nothing is computed here)
from qvi_app.index import SearchHit  # noqa: E402

RATING_TEXT = {1: "▲ up", -1: "▼ down", 0: ""}


class LevelMeter(tk.Canvas):
    """A horizontal input-level bar from -60 to 0 dBFS: green, amber near the top, red when clipping."""

    FLOOR_DB = -60.0

    def __init__(self, master, width=160, height=14):
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


class ResultsTable(ttk.Frame):
    """Ranked results: rank, name, category, duration, similarity, rating; the playing row is marked."""

    COLUMNS = (("play", "", 28), ("rank", "#", 40), ("name", "Sound", 180), ("category", "Category", 120),
               ("duration", "Length", 66), ("score", "Similarity", 86), ("rating", "Rating", 70))

    def __init__(self, master):
        super().__init__(master)
        self.tree = ttk.Treeview(self, columns=[c[0] for c in self.COLUMNS], show="headings",
                                 selectmode="browse", height=18)
        for key, title, width in self.COLUMNS:
            self.tree.heading(key, text=title)
            anchor = "w" if key in ("name", "category") else "e" if key in ("duration", "score", "rank") else "center"
            self.tree.column(key, width=width, anchor=anchor, stretch=key == "name")
        scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview)
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.grid(row=0, column=0, sticky="nsew")
        scroll.grid(row=0, column=1, sticky="ns")
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)
        self.tree.tag_configure("playing", background="#d2e3fc")
        self.hits: list[SearchHit] = []

    def show(self, hits: list[SearchHit], ratings: dict[str, int]) -> None:
        self.tree.delete(*self.tree.get_children())
        self.hits = list(hits)
        for i, h in enumerate(self.hits):
            self.tree.insert("", "end", iid=str(i), values=(
                "", h.rank, h.path.name, h.category, f"{h.duration:.1f} s", f"{h.score:.3f}",
                RATING_TEXT[ratings.get(h.relpath, 0)]))

    def selected(self) -> SearchHit | None:
        sel = self.tree.selection()
        return self.hits[int(sel[0])] if sel else None

    def set_rating(self, hit: SearchHit, rating: int) -> None:
        for iid in self.tree.get_children():
            if self.hits[int(iid)].relpath == hit.relpath:
                self.tree.set(iid, "rating", RATING_TEXT[rating])

    def mark_playing(self, hit: SearchHit | None) -> None:
        for iid in self.tree.get_children():
            on = hit is not None and self.hits[int(iid)].relpath == hit.relpath
            self.tree.set(iid, "play", "▶" if on else "")
            self.tree.item(iid, tags=("playing",) if on else ())

    def row_values(self) -> list[dict]:
        """What the table shows, row by row (used by tests and the screenshot check)."""
        keys = [c[0] for c in self.COLUMNS]
        return [dict(zip(keys, self.tree.item(iid, "values"))) for iid in self.tree.get_children()]


class SpectrogramPanel(ttk.Frame):
    """The query's and the selected result's spectrograms, one above the other on shared axes."""

    def __init__(self, master):
        super().__init__(master)
        self.figure = Figure(figsize=(5.2, 4.6), dpi=100, layout="constrained")
        self.ax_query = self.figure.add_subplot(2, 1, 1)
        self.ax_result = self.figure.add_subplot(2, 1, 2, sharex=self.ax_query, sharey=self.ax_query)
        self.canvas = FigureCanvasTkAgg(self.figure, master=self)
        self.canvas.get_tk_widget().pack(fill="both", expand=True)
        self.titles = {"query": "", "result": ""}
        self.show("query", None, "Query: record or open a sound")
        self.show("result", None, "Result: select one in the list")

    def show(self, which: str, spec: DisplaySpectrogram | None, title: str) -> None:
        ax = self.ax_query if which == "query" else self.ax_result
        ax.clear()
        self.titles[which] = title
        ax.set_title(title, fontsize=9, loc="left")
        ax.set_ylabel("mel band", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.set_facecolor("#000004")  # the colour of silence in the colour map, past the end of a clip
        if which == "result":
            ax.set_xlabel("seconds", fontsize=8)
        if spec is not None:
            ax.imshow(spec.db, origin="lower", aspect="auto", extent=spec.extent, vmin=-80, vmax=0,
                      cmap="magma", interpolation="nearest")
        self.canvas.draw_idle()


class MessageBanner(ttk.Frame):
    """A dismissible message line above the results, with an optional action button."""

    def __init__(self, master):
        super().__init__(master, padding=(8, 4), style="Banner.TFrame")
        self.label = ttk.Label(self, style="Banner.TLabel", wraplength=900, justify="left")
        self.label.pack(side="left", fill="x", expand=True)
        ttk.Button(self, text="✕", width=3, command=self.hide, style="Banner.TButton").pack(side="right")
        self.action = ttk.Button(self, style="Banner.TButton")
        self.text = ""

    def show(self, text: str, action_text: str | None = None, action=None) -> None:
        self.text = text
        self.label.configure(text=text)
        self.action.pack_forget()
        if action_text:
            self.action.configure(text=action_text, command=lambda: (self.hide(), action()))
            self.action.pack(side="right", padx=6)
        self.grid()

    def hide(self) -> None:
        self.text = ""
        self.grid_remove()
