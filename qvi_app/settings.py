"""What the window remembers between sessions, kept as JSON in the user's data directory."""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from qvi_app.paths import data_dir


@dataclass
class AppSettings:
    index_dir: str | None = None        # the library last opened; None: the bundled demo library
    top_n: int = 20
    max_record_s: float = 10.0
    input_device: str | int | None = None
    output_device: str | int | None = None
    volume: float = 1.0                 # playback, 0..1
    use_adapter: bool = True            # apply the query adapter learned from the user's ratings
    last_folder: str | None = None      # where file and folder dialogs start (else the home folder)
    learn_automatically: bool = True    # learn an adapter by itself as liked queries add up
    learned_from: int = 0               # liked queries there were at the last attempt
    even_loudness: bool = True          # results and the query played at one loudness (Audio menu)
    stop_when_quiet: bool = True        # recording ends by itself 2 s after the imitation (Audio menu)
    loop_playback: bool = False         # results play again and again until stopped (L, Result menu)
    window_size: str | None = None      # "WxH" as the window was closed; None: sized to the screen
    list_width: int = 0                 # the list's share of the window (px) as it was closed; 0: default

    @staticmethod
    def path() -> Path:
        return data_dir() / "settings.json"

    @classmethod
    def load(cls) -> "AppSettings":
        """The saved settings; defaults for anything missing, unknown, unreadable, of the wrong
        type or out of range (a hand-edited file with a number for a path stopped the window
        at start)."""
        try:
            raw = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        settings = cls()
        if isinstance(raw, dict):
            for f in fields(cls):
                if f.name in raw and _fits(raw[f.name], f.type, _RANGES.get(f.name)):
                    setattr(settings, f.name, float(raw[f.name]) if f.type == "float" else raw[f.name])
        return settings

    def save(self) -> None:
        """Write atomically; raises OSError when the data directory is not writable."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)


#: Bounds of the numbers, beyond their types: what the window offers, and sane.
_RANGES = {"top_n": (1, 1000), "max_record_s": (1.0, 600.0), "volume": (0.0, 1.0), "learned_from": (0, 10**9),
           "list_width": (0, 100_000)}


def _fits(value, annotation: str, bounds: tuple | None) -> bool:
    """Whether a value read from settings.json suits a field annotated ``annotation`` (a string:
    this module postpones its annotations) and lies within ``bounds``."""
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    kinds = {"None": value is None, "str": isinstance(value, str), "bool": isinstance(value, bool),
             "int": number and isinstance(value, int), "float": number and math.isfinite(value)}
    if not any(kinds[kind.strip()] for kind in annotation.split("|")):
        return False
    return bounds is None or value is None or bounds[0] <= value <= bounds[1]


def feedback_db_path() -> Path:
    return data_dir() / "feedback.sqlite"
