#!/usr/bin/env python
"""Launch the qvi window on the last library used, or on the bundled demo library.

    python main.py [QUERY_SOUND] [--index INDEX_DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qvi_app.gui import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run())
