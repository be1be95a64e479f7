"""The row over the result list that narrows it: words of the name, and a length.

It sits over the list it narrows, as wide as the list (the bar above, with the category box and
the list's size, has no room). It knows what it keeps and when that changes; the window decides
what a change does (re-rank the list), through the callbacks it is given.
"""

from __future__ import annotations

import tkinter as tk
from collections.abc import Callable
from tkinter import ttk

from qvi_app.errors import QviError, counted, sentence
from qvi_app.gui.tasks import TaskRunner
from qvi_app.gui.widgets import Tooltip
from qvi_app.index import LENGTH_PRESETS, Filters, Length

ANY_LENGTH = "Any length"
#: The name filter re-ranks when typing pauses this long, not at every key.
NAME_PAUSE_MS = 250
#: What the name field matches, said when the pointer rests on it (a recorder's ZOOM0042.WAV is
#: found by its description, which the label's "Name" does not say).
NAME_TIP = ("Words of a sound's file or folder name, or of its own description (title, comment, "
            "a recorder's note, a library's name, keywords and category), in any order and case; "
            "-word leaves out what holds it, \"two words\" keeps them together: door -car \"slam shut\"")


def counted_choices(every: str, counts: dict[str, int], chosen: str | None) -> list[str]:
    """A box's choices with their counts ("birds  (44)"): ``every`` first with their sum (what the
    other filters keep), then each choice that keeps a sound, or is ``chosen``."""
    return [f"{every}  ({sum(counts.values()):,})"] + [f"{c}  ({n:,})" for c, n in counts.items() if n or c == chosen]


def choice_of(text: str) -> str:
    """The choice a box's entry names, without its count: "birds  (44)" is "birds"."""
    return text.split("  (")[0]


def shown_choice(box: ttk.Combobox, choice: str, otherwise: str) -> str:
    """``choice`` as ``box`` lists it, with its count; ``otherwise`` when it lists it not."""
    return next((v for v in box["values"] if choice_of(v) == choice), otherwise)


class FilterRow(ttk.Frame):
    """*Name contains* [words] (how many sounds hold them) *Length* [a choice, or typed].

    ``prepare_name(words)`` and ``prepare_length()`` run on a worker (they read a large library's
    item table) before ``on_change()`` is called on the Tk thread; ``on_error(text)`` says a
    length that cannot be read, ``on_failed(exc)`` a worker that failed; ``give_keys_back()``
    hands the keyboard to the list once a length is chosen."""

    def __init__(self, master, tasks: TaskRunner, *, prepare_name: Callable[[str], int | None],
                 prepare_length: Callable[[], None], on_change: Callable[[], None],
                 on_error: Callable[[str], None], on_failed: Callable[[BaseException], None],
                 give_keys_back: Callable[[], None]):
        super().__init__(master, padding=(0, 0, 0, 4))
        self.tasks = tasks
        self._prepare_name, self._prepare_length = prepare_name, prepare_length
        self._on_change, self._on_error, self._on_failed = on_change, on_error, on_failed
        self._give_keys_back = give_keys_back
        ttk.Label(self, text="Name contains").pack(side="left")
        self.name_var = tk.StringVar()
        self.name_entry = ttk.Entry(self, textvariable=self.name_var)
        self.name_entry.pack(side="left", fill="x", expand=True, padx=(6, 0))
        self._name_tip = Tooltip(self.name_entry, lambda x, y: NAME_TIP)
        self.name_count = ttk.Label(self, text="", style="Status.TLabel")   # as wide as its text: no gap
        self.name_count.pack(side="left", padx=(6, 0))
        ttk.Label(self, text="Length").pack(side="left", padx=(6, 0))
        self.length_var = tk.StringVar(value=ANY_LENGTH)
        # A choice, or any length typed as on the command line ("0.2-0.5", "2-"), applied by Enter.
        self.length_box = ttk.Combobox(self, textvariable=self.length_var, width=16)
        self.length_box.pack(side="left", padx=(6, 0))
        self.length: Length | None = None     # the length applied (what the box says once Enter is pressed)
        self.forget_counts()
        self.length_box.bind("<<ComboboxSelected>>", lambda e: self._length_chosen())
        self.length_box.bind("<Return>", lambda e: self._length_chosen())
        # Left without Enter (or Esc), the box shows again the length the list has, not unapplied text.
        self.length_box.bind("<FocusOut>", lambda e: self._show_length(), add="+")
        self.length_box.bind("<Escape>", lambda e: self._show_length(), add="+")
        self._name_after = None
        self.name_var.trace_add("write", lambda *_: self._name_typed())
        self.name_entry.bind("<Escape>", lambda e: self.name_var.set(""), add="+")   # then Esc stops playing too

    @property
    def name(self) -> str:
        return self.name_var.get()

    def show(self, filters: Filters) -> None:
        """The row set to a list's name words and length (after Back, after a library opens),
        without re-ranking: that list is already narrowed so."""
        self.length = filters.length
        self._show_length()
        name = filters.name or ""
        if self.name_var.get() != name:
            self.name_var.set(name)
            if self._name_after is not None:
                self.after_cancel(self._name_after)
                self._name_after = None
            self._count_name()

    def forget_counts(self) -> None:
        """The counts of another library forgotten (one opened): the words' counted again, the
        lengths' without counts until :meth:`show_counts` brings this library's."""
        self.length_box.configure(values=[ANY_LENGTH] + [p.describe() for p in LENGTH_PRESETS])
        self._show_length()
        self._count_name()

    def _count_name(self) -> None:
        """How many sounds hold the words in the field, counted on a worker, without re-ranking."""
        self.name_count.configure(text="")
        name = self.name_var.get()
        if name.strip():
            self.tasks.submit(lambda: self._prepare_name(name), lambda n: self._name_counted(name, n),
                              self._on_failed)

    def show_counts(self, counts: dict[Length, int]) -> None:
        """How many sounds each length keeps, beside it, as the category box shows its counts
        (*Any length* with theirs, the lengths' sum); one keeping none is left out unless it is
        the length applied."""
        applied = self.length.describe() if self.length is not None else None
        self.length_box.configure(values=counted_choices(ANY_LENGTH, {p.describe(): n for p, n in counts.items()},
                                                         applied))
        if self.focus_get() is not self.length_box:          # not under the user's typing
            self._show_length()

    def focus_name(self) -> None:
        """The keys go to the name field, its words selected to type over."""
        self.name_entry.focus_set()
        self.name_entry.selection_range(0, "end")
        self.name_entry.icursor("end")

    # -- length -----------------------------------------------------------------------------------
    def _show_length(self) -> None:
        """The box says the length applied: its entry with its count, once the library's are known."""
        said = ANY_LENGTH if self.length is None else self.length.describe()
        self.length_var.set(shown_choice(self.length_box, said, said))

    def _length_chosen(self) -> None:
        """A length picked or typed (Enter): read as the command line reads one; one that cannot
        be read is said in a line and changes nothing. Every sound's length is read on a worker
        first, then the list is re-ranked."""
        text = choice_of(self.length_var.get())
        try:
            length = None if text.strip().lower() in ("", "any", ANY_LENGTH.lower()) else Length.parse(text)
        except QviError as exc:
            self._on_error(sentence(str(exc)))
            return
        self.length = length
        self._give_keys_back()                 # chosen: the keys (Space, M, the arrows) are the list's again
        self.tasks.submit(self._prepare_length, lambda _: self._on_change(), self._on_failed)

    # -- name -------------------------------------------------------------------------------------
    def _name_typed(self) -> None:
        """Re-rank once typing pauses: the sounds the words keep are found on a worker thread
        (a large library's item table is read), then the list is re-ranked here."""
        if self._name_after is not None:
            self.after_cancel(self._name_after)
        self._name_after = self.after(NAME_PAUSE_MS, self._apply_name)

    def _apply_name(self) -> None:
        self._name_after = None
        name = self.name_var.get()
        self.tasks.submit(lambda: self._prepare_name(name), lambda n: self._name_ready(name, n), self._on_failed)

    def _name_ready(self, name: str, count: int | None) -> None:
        if self._name_counted(name, count):
            self._on_change()

    def _name_counted(self, name: str, count: int | None) -> bool:
        """Says how many sounds hold the words; False when they were typed over meanwhile (the
        next pause answers)."""
        if self.name_var.get() != name:
            return False
        self.name_count.configure(text="" if count is None else counted(count, "sound"))
        return True
