"""The window's small dialogs: a folder (typed or browsed), the audio devices, a list of lines."""

from __future__ import annotations

import tkinter as tk
from pathlib import Path
from tkinter import filedialog, ttk

DEFAULT_DEVICE = "System default"


def ask_folder(parent, start: str) -> str | None:
    """A folder, typed or browsed: one OK (Tk's own folder dialog needed two for a typed path)."""
    win = tk.Toplevel(parent)
    win.title("Open library folder")
    win.transient(parent)
    var = tk.StringVar(value=start)
    ttk.Label(win, text="Folder of sounds to search (typed, or chosen with Browse…):").grid(
        row=0, column=0, columnspan=3, sticky="w", padx=8, pady=(8, 2))
    entry = ttk.Entry(win, textvariable=var, width=60)
    entry.grid(row=1, column=0, padx=8, pady=4)
    chosen: list[str] = []

    def browse():
        folder = filedialog.askdirectory(parent=win, initialdir=var.get() or start, mustexist=True)
        if folder:
            var.set(folder)

    def ok(_event=None):
        path = Path(var.get()).expanduser()
        if not path.is_dir():
            label.configure(text=f"{path} is not a folder")
            return
        chosen.append(str(path))
        win.destroy()

    ttk.Button(win, text="Browse…", command=browse).grid(row=1, column=1, padx=4)
    ttk.Button(win, text="Open", command=ok).grid(row=1, column=2, padx=8)
    label = ttk.Label(win, text="", foreground="#a50e0e")
    label.grid(row=2, column=0, columnspan=3, sticky="w", padx=8, pady=(0, 8))
    entry.bind("<Return>", ok)
    entry.focus_set()
    win.grab_set()
    parent.wait_window(win)
    return chosen[0] if chosen else None


def ask_devices(parent, inputs: list[str], outputs: list[str], microphone: str | None, speaker: str | None,
                use) -> tk.Toplevel:
    """The microphone and speaker to use, each a name or the system's default (None); ``use``
    (microphone, speaker) hears the choice. Returns the dialog, open."""
    win = tk.Toplevel(parent)
    win.title("Audio devices")
    in_var = tk.StringVar(value=microphone or DEFAULT_DEVICE)
    out_var = tk.StringVar(value=speaker or DEFAULT_DEVICE)
    for row, (label, var, names) in enumerate((("Microphone", in_var, inputs), ("Speaker", out_var, outputs))):
        ttk.Label(win, text=label).grid(row=row, column=0, sticky="w", padx=8, pady=6)
        ttk.Combobox(win, textvariable=var, values=[DEFAULT_DEVICE] + names, state="readonly", width=48).grid(
            row=row, column=1, padx=8, pady=6)

    def apply():
        use(*(None if v.get() == DEFAULT_DEVICE else v.get() for v in (in_var, out_var)))
        win.destroy()

    ttk.Button(win, text="Use these", command=apply).grid(row=2, column=1, sticky="e", padx=8, pady=8)
    return win


def show_lines(parent, title: str, lines, font: str = "TkDefaultFont") -> tk.Toplevel:
    """A window listing ``lines`` (skipped files, the keys), with Close."""
    win = tk.Toplevel(parent)
    win.title(title)
    box = tk.Listbox(win, width=100, height=min(25, max(5, len(lines))), font=font)
    for line in lines:
        box.insert("end", line)
    box.pack(fill="both", expand=True, padx=8, pady=8)
    ttk.Button(win, text="Close", command=win.destroy).pack(pady=(0, 8))
    return win
