"""The tkinter window (``python main.py``); it talks only to :mod:`qvi_app.app` and the
tk-free :mod:`qvi_app.workbench`."""

from __future__ import annotations

import argparse
import logging
import os
import sys

USAGE_WITHOUT_WINDOW = """\
qvi needs a graphical display for its window ({reason}).
Without one, use the qvi command:
  .venv/bin/qvi search my_imitation.wav [--category birds] [--top 10] [--json]
  .venv/bin/qvi search --record          (imitate into the microphone)
  .venv/bin/qvi categories
  .venv/bin/qvi index ~/Sounds/MyLibrary
  .venv/bin/qvi info"""


def run(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="main.py", description="qvi: find sound effects by imitating them.")
    ap.add_argument("query", nargs="?", help="a sound file to search with at start")
    ap.add_argument("--index", help="index folder to open (default: the last library, else the demo library)")
    ap.add_argument("--quiet", action="store_true", help="log only warnings to the terminal")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="qvi: %(message)s",
                        stream=sys.stderr)
    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        print(USAGE_WITHOUT_WINDOW.format(reason="DISPLAY is not set"), file=sys.stderr)
        return 2
    try:
        import tkinter as tk
    except ImportError as exc:
        print(USAGE_WITHOUT_WINDOW.format(reason=f"tkinter is missing: {exc}; install python3-tk"), file=sys.stderr)
        return 2
    try:
        root = tk.Tk(className="qvi")
    except tk.TclError as exc:
        print(USAGE_WITHOUT_WINDOW.format(reason=f"cannot open the display: {exc}"), file=sys.stderr)
        return 2
    from qvi_app.gui.window import QviWindow

    QviWindow(root, index_dir=args.index, query_file=args.query)
    root.mainloop()
    # Everything is on disk already (ratings committed at once, settings saved when changed); skip
    # the interpreter's teardown of torch and worker threads, which took 3-4 s after Ctrl+Q.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
