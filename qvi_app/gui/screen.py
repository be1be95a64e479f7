"""The window's size on this screen: scaled with its DPI, fitted to the room a desktop leaves
(its panels and a title bar), and the size it was closed at when that still fits.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tkinter as tk

from qvi_app.gui.widgets import ui_scale


def fit_to_screen(root: tk.Tk, saved_size: str | None) -> None:
    """Scale with the screen's DPI and take most of a large screen (1180x720 at 1920x1080 looked
    small), or ``saved_size`` ("1000x640", as the window was closed) where it fits."""
    dpi = root.winfo_fpixels("1i")
    if dpi > 110:
        root.tk.call("tk", "scaling", dpi / 72.0)

    def px(pixels: float) -> int:
        return round(pixels * ui_scale(root))

    # What the window may use: the screen less its title bar (about 30 px), its menu bar (32 px
    # measured under Xvfb), a desktop panel (about 40 px) and a little to spare. Asking for the
    # whole height put the status line and the buttons under the list off the bottom of a
    # 1024x600 screen (and of a 1366x768 or 1280x800 laptop's, once a title bar and a panel
    # took their share).
    sw, sh = root.winfo_screenwidth(), root.winfo_screenheight()
    room_w, room_h = sw - px(16), sh - px(110)
    area = work_area(root)
    if area is not None:                            # the screen less its panels, as the desktop says
        room_w, room_h = min(room_w, area[0] - px(8)), min(sh, area[1]) - px(36)   # a title bar's room
    w, h = max(px(1180), min(int(sw * 0.75), px(1800))), max(px(720), min(int(sh * 0.8), px(1150)))
    min_w, min_h = min(px(860), room_w), min(px(520), room_h)
    w, h = parse_size(saved_size) or (w, h)          # as it was closed, if it still fits
    root.geometry(f"{max(min_w, min(w, room_w))}x{max(min_h, min(h, room_h))}")
    root.minsize(min_w, min_h)


def work_area(root: tk.Tk) -> tuple[int, int] | None:
    """The desktop's work area (width, height): the screen less its panels, as an EWMH window
    manager publishes it (``_NET_WORKAREA`` on the root window, read with xprop); None without
    one (a bare X server), without xprop, or off X11."""
    if root.tk.call("tk", "windowingsystem") != "x11" or shutil.which("xprop") is None:
        return None
    try:
        out = subprocess.run(["xprop", "-root", "-display", root.winfo_screen(), "_NET_WORKAREA"],
                             capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    numbers = [int(n) for n in re.findall(r"\d+", out.partition("=")[2])]
    return (numbers[2], numbers[3]) if len(numbers) >= 4 and numbers[2] > 0 and numbers[3] > 0 else None


def parse_size(text: str | None) -> tuple[int, int] | None:
    """"1000x640" as (1000, 640); None for anything else (a hand-edited settings file)."""
    try:
        w, h = (int(v) for v in (text or "").split("x"))
    except ValueError:
        return None
    return (w, h) if w > 0 and h > 0 else None
