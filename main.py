#!/usr/bin/env python
"""Launch qvi on the bundled demo library.

The window is not written yet; until it is, this checks that the library and model load,
runs one example search, and prints how to use the ``qvi`` command.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qvi_app.app import QviSession  # noqa: E402
from qvi_app.errors import QviError  # noqa: E402


def main() -> int:
    try:
        session = QviSession()
    except QviError as exc:
        print(f"qvi: {exc}", file=sys.stderr)
        return 2
    info = session.info()
    print(f"qvi is ready: {info['items']} sounds in {info['categories']} categories ({info['library']})")
    print(f"model: {info['encoder']}\n")
    example = session.index.library_root / session.index.items[0].path
    result = session.search_file(example, top_k=5)
    print(f"example: sounds most like {example.name} ({result.total_ms:.0f} ms)")
    for h in result.hits:
        print(f"  {h.rank}. {h.score:.3f}  {h.category:<16} {h.relpath}")
    print("""
Use it from the terminal (the window comes next):
  .venv/bin/qvi search my_imitation.wav [--category birds] [--top 10] [--json]
  .venv/bin/qvi categories
  .venv/bin/qvi index ~/Sounds/MyLibrary          # index your own folder, then:
  .venv/bin/qvi search query.wav --index ~/.local/share/qvi/indexes/<the folder it printed>
  .venv/bin/qvi info""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
