"""Where qvi finds its bundled files and keeps the user's data.

Tests and users redirect the data directory with ``QVI_DATA_DIR``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODELS_DIR = REPO_ROOT / "models"
BUNDLED_CNN = MODELS_DIR / "qvi-cnn.pt"
#: The aisfx backbone as published (no fine-tuning): the starting point of training and a baseline.
ZERO_SHOT_CNN = MODELS_DIR / "aisfx-cnn.pt"
ASSETS_DIR = REPO_ROOT / "assets"
DEMO_LIBRARY = ASSETS_DIR / "library"
DEMO_INDEX = ASSETS_DIR / "index"
#: The encoder the bundled index is built with, and qvi's default (encoders.DEFAULT_ENCODER).
DEMO_ENCODER = "qvi"


def data_dir() -> Path:
    """The user's qvi data directory (not created here)."""
    env = os.environ.get("QVI_DATA_DIR")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "qvi"


def default_index_dir(library: Path, encoder_name: str) -> Path:
    """The bundled index for the demo library, else one folder per library in the data dir."""
    library = Path(library).resolve()
    if library == DEMO_LIBRARY.resolve() and encoder_name == DEMO_ENCODER:
        return DEMO_INDEX
    tag = hashlib.sha256(str(library).encode()).hexdigest()[:8]
    return data_dir() / "indexes" / f"{library.name or 'root'}-{tag}-{encoder_name}"
