"""Who made the demo library's sounds, and under which licence: what travels with a demo sound
(or a part of one) that leaves qvi, since their licences ask for the credit.

``assets/ATTRIBUTION.csv`` holds a row per clip; a folder a sound is copied or saved into gets an
``ATTRIBUTION.csv`` of its own, a row per file.
"""

from __future__ import annotations

import csv
import functools
import os
from pathlib import Path

from qvi_app.paths import ASSETS_DIR, DEMO_LIBRARY

ATTRIBUTION_FIELDS = ("file", "author", "license", "source_package", "original_path")


def demo_credit(path) -> dict | None:
    """{author, license, source_package, original_path} of a demo-library sound; None for any
    other file."""
    try:
        rel = Path(path).resolve().relative_to(DEMO_LIBRARY.resolve()).as_posix()
    except (ValueError, OSError):
        return None
    return _demo_credits().get(rel)


def credit_line(path) -> str:
    """A demo sound's licence and author in a line ("CC-BY-3.0, Wildfire Games"); "" for any
    other file."""
    credit = demo_credit(path)
    return ", ".join(x for x in (credit["license"], credit["author"]) if x) if credit else ""


@functools.lru_cache(maxsize=1)
def _demo_credits() -> dict[str, dict]:
    try:
        with open(ASSETS_DIR / "ATTRIBUTION.csv", newline="", encoding="utf-8") as f:
            return {r["clip"]: {k: r.get(k, "") for k in ATTRIBUTION_FIELDS[1:]} for r in csv.DictReader(f)}
    except (OSError, KeyError, csv.Error):
        return {}


def append_attribution(path: Path, rows: list[dict]) -> None:
    """Add ``rows`` ({file, author, license, ...}) to the ``ATTRIBUTION.csv`` at ``path``,
    with a header when the file is new."""
    new = not path.exists() or os.path.getsize(path) == 0
    with open(path, "a", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=ATTRIBUTION_FIELDS)
        if new:
            w.writeheader()
        w.writerows(rows)
