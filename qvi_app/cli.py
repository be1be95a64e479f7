"""``qvi``: index a sound library and search it by an audio query.

Exit codes: 0 ok, 2 bad usage or input (one line on stderr), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qvi_app import __version__
from qvi_app.encoders import ENCODER_NAMES
from qvi_app.errors import QviError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qvi", description="Find sound effects by imitating them with your voice.")
    p.add_argument("--version", action="version", version=f"qvi {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    ix = sub.add_parser("index", help="index (or update the index of) a folder of sounds")
    ix.add_argument("library", type=Path, metavar="DIR")
    ix.add_argument("--index", type=Path, metavar="INDEX_DIR",
                    help="where to keep the index (default: the user's data directory; "
                         "the bundled index for the demo library)")
    ix.add_argument("--encoder", choices=ENCODER_NAMES, default="cnn")
    ix.add_argument("--checkpoint", type=Path, help="cnn model file (default: the bundled model)")
    ix.add_argument("--categories", type=Path, metavar="CSV", help="CSV with columns path,category")
    ix.add_argument("--quiet", action="store_true", help="no progress bar")

    se = sub.add_parser("search", help="rank the library by similarity to an audio file")
    se.add_argument("query", type=Path, metavar="QUERY")
    _index_args(se)
    se.add_argument("--category", help="only this category (see: qvi categories)")
    se.add_argument("--top", type=_positive_int, default=10, metavar="N")
    se.add_argument("--json", action="store_true", help="print a JSON list of {rank, path, category, score}")

    ca = sub.add_parser("categories", help="list the library's categories")
    _index_args(ca)

    inf = sub.add_parser("info", help="show the library, the encoder and counts")
    _index_args(inf)

    be = sub.add_parser("bench", help="measure query latency, indexing and ranking speed (see docs/BENCHMARKS.md)")
    be.add_argument("--quick", action="store_true", help="smaller sizes; under 3 minutes on 2 cores")
    be.add_argument("--json", type=Path, default=Path("qvi-bench.json"), metavar="FILE",
                    help="where to write the results (default: qvi-bench.json)")
    return p


def _index_args(p):
    p.add_argument("--index", type=Path, metavar="INDEX_DIR", help="index folder (default: the bundled demo index)")
    p.add_argument("--checkpoint", type=Path, help="cnn model file (default: the bundled model)")


def _positive_int(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return n


def _cmd_index(a) -> int:
    from qvi_app.app import build_index

    report = build_index(a.library, a.index, a.encoder, a.checkpoint, a.categories, show_progress=not a.quiet)
    print(report.summary())
    return 0


def _cmd_search(a) -> int:
    from qvi_app.app import QviSession

    result = QviSession(a.index, a.checkpoint).search_file(a.query, a.category, a.top)
    if a.json:
        print(json.dumps([h.to_dict() for h in result.hits], indent=2))
        return 0
    for h in result.hits:
        print(f"{h.rank:3d}  {h.score:6.3f}  {h.category:<18} {h.path}")
    print(f"({result.total_ms:.0f} ms: " + ", ".join(f"{k} {v:.0f}" for k, v in result.timings_ms.items()) + ")",
          file=sys.stderr)
    return 0


def _cmd_categories(a) -> int:
    from qvi_app.app import QviSession

    for name, n in QviSession(a.index, a.checkpoint).categories().items():
        print(f"{name}\t{n}")
    return 0


def _cmd_info(a) -> int:
    from qvi_app.app import QviSession

    info = QviSession(a.index, a.checkpoint).info()
    model = info.pop("encoder_model")
    for k, v in info.items():
        print(f"{k:<11} {v}")
    print(f"{'model':<11} {model['id']} ({model['dim']}-d, {model['sample_rate']} Hz)")
    return 0


def _cmd_bench(a) -> int:
    from qvi_app.bench import BenchConfig, run

    run(BenchConfig.make(a.quick), a.json)
    return 0


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    handler = {"index": _cmd_index, "search": _cmd_search, "categories": _cmd_categories, "info": _cmd_info,
               "bench": _cmd_bench}
    try:
        return handler[args.command](args)
    except QviError as exc:
        print(f"qvi: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qvi: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
