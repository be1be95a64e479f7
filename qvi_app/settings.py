"""What the window remembers between sessions, kept as JSON in the user's data directory."""

from __future__ import annotations

import json
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
    even_loudness: bool = True          # results played at one loudness (Audio menu), not their own

    @staticmethod
    def path() -> Path:
        return data_dir() / "settings.json"

    @classmethod
    def load(cls) -> "AppSettings":
        """The saved settings; defaults for anything missing, unknown or unreadable."""
        try:
            raw = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known}) if isinstance(raw, dict) else cls()

    def save(self) -> None:
        """Write atomically; raises OSError when the data directory is not writable."""
        path = self.path()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        os.replace(tmp, path)


def feedback_db_path() -> Path:
    return data_dir() / "feedback.sqlite"
