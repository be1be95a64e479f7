"""``qvi bench --scale N``: a library of N sounds, measured as a user meets it.

The N references are the demo library's real embeddings (of the bundled encoder) repeated with
noise, written to an index folder by the same ``write_index`` as ``qvi index`` uses, from a
memory-mapped file (precomputed embeddings: the embedding itself is measured by ``qvi bench``'s
indexing rows). Each figure that a goal names is measured in its own process, so peak RSS is
that process's own:

- build: ``write_index`` from the precomputed embeddings (wall, peak RSS, size on disk);
- cold call: ``qvi search QUERY --index DIR`` from process start to exit (wall, peak RSS);
- warm query: a 10 s imitation through an open session (what the window does), median;
- ``--category``: ranking restricted to one category (1/16 of the library), median;
- ``--name``: ranking restricted to the sounds whose path holds a word: a word not typed before
  (the item table is read) and the same word again (its rows are kept), medians;
- a rating's re-ranking (▲ one result, ▼ two) and "more like this", median;
- recall@10 of the search against brute force over all N, on imitation-like queries.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np

from qvi_app.bench.process import run_measured

CATEGORIES = 16
_CHUNK = 65_536


def _make_embeddings(base: np.ndarray, blocks, n: int, path: Path, seed: int) -> np.memmap:
    """``n`` unit-block rows near the demo library's, written in chunks to a .npy memory map."""
    rng = np.random.default_rng(seed)
    out = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, base.shape[1]))
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        x = base[rng.integers(len(base), size=stop - start)].copy()
        for _, a, b in blocks:                 # noise of norm 0.6 per block: cosine ~0.85 to its source
            x[:, a:b] += (0.6 / np.sqrt(b - a)) * rng.standard_normal((stop - start, b - a)).astype(np.float32)
            x[:, a:b] /= np.linalg.norm(x[:, a:b], axis=1, keepdims=True)
        out[start:stop] = x
    out.flush()
    return out


def _child(code: str, *args: str) -> tuple[float, float, str]:
    """(wall s, peak RSS GB, stdout) of ``python -c code args`` in a fresh process."""
    r = run_measured([sys.executable, "-c", code, *args])
    if r.returncode != 0:
        raise RuntimeError(f"bench child exited {r.returncode}: {r.stderr.strip()[-500:]}")
    sys.stderr.write(r.stderr)
    return r.wall_s, r.peak_rss_mb / 1024, r.stdout


_BUILD = """
import sys, time, numpy as np
from pathlib import Path
from qvi_app.index import IndexItem
from qvi_app.index.store import write_index
import json
emb = np.load(sys.argv[1], mmap_mode="r")
encoder = json.loads(Path(sys.argv[3]).read_text())
banks = dict(np.load(sys.argv[5])) if len(sys.argv) > 5 else None
n = len(emb)
items = [IndexItem(f"cat{i % %(cats)d:02d}/s{i:08d}.wav", f"cat{i % %(cats)d:02d}", 0.25 * (1 + i % 40), 44100, 1, 0.0, "")
         for i in range(n)]
t = time.perf_counter()
write_index(Path(sys.argv[2]), encoder=encoder, library_root=Path(sys.argv[4]), items=items, embeddings=emb, skipped=[],
            query_banks=banks)
print(time.perf_counter() - t)
""".replace("%(cats)d", str(CATEGORIES))


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def bench_scale(n: int, work: Path | None = None, runs: int = 20, seed: int = 0) -> dict:
    from qvi_app.app import QviSession
    from qvi_app.bench.run import _query_file, stats
    from qvi_app.index import Filters, Length
    from qvi_app.paths import DEMO_INDEX, DEMO_LIBRARY

    with tempfile.TemporaryDirectory(prefix="qvi-scale-", dir=work) as tmp:
        tmp = Path(tmp)
        demo = QviSession(DEMO_INDEX)
        encoder = demo.encoder.describe()
        blocks = demo.index.blocks or [("", 0, demo.index.embeddings.shape[1])]
        print(f"  scale {n:,}: writing {n:,} x {encoder['dim']} synthetic embeddings…", flush=True)
        emb = _make_embeddings(np.asarray(demo.index.embeddings), blocks, n, tmp / "emb.npy", seed)
        (tmp / "encoder.json").write_text(json.dumps(encoder))
        np.savez(tmp / "banks.npz", **demo.encoder.query_banks())
        query = _query_file(10.0, tmp, demo)
        index_dir = tmp / "index"
        print("  building the index from them…", flush=True)
        build_wall, build_rss, out = _child(_BUILD, str(tmp / "emb.npy"), str(index_dir), str(tmp / "encoder.json"),
                                            str(DEMO_LIBRARY), str(tmp / "banks.npz"))
        row = {"references": n, "dim": int(encoder["dim"]), "encoder": encoder["id"],
               "build_s": float(out.strip()), "build_process_s": build_wall, "build_peak_rss_gb": build_rss,
               "index_disk_gb": _folder_bytes(index_dir) / 1e9}
        print(f"  build {row['build_s']:.0f} s, peak {build_rss:.1f} GB; cold qvi search calls…", flush=True)
        colds = [_child("from qvi_app.cli import run; run()",
                        "search", str(query), "--index", str(index_dir), "--top", "10") for _ in range(3)]
        row.update(cold_call_s=float(np.median([c[0] for c in colds])), cold_call_peak_rss_gb=max(c[1] for c in colds))
        del demo
        session = QviSession(index_dir)
        index = session.index
        row["approximate"] = index.ann is not None
        row["ann_memory_mb"] = index.ann.memory_bytes() / 1e6 if index.ann is not None else 0.0
        session.search_file(query)                                       # warm up
        warm = [session.search_file(query).timings_ms for _ in range(runs)]
        row.update({f"warm_{k}": v for k, v in stats([sum(t.values()) - t["load"] for t in warm]).items()})
        first = session.search_file(query)                               # a click: ▲ on #2, ▼ on #3 and #4
        ratings = {first.hits[1].relpath: 1, first.hits[2].relpath: -1, first.hits[3].relpath: -1}
        row.update({f"rerank_{k}": v for k, v in stats([_ms(partial(session.with_feedback, first, ratings, 20))
                                                          for _ in range(runs)]).items()})
        row.update({f"similar_{k}": v for k, v in stats([_ms(partial(session.similar, first.hits[0].relpath))
                                                           for _ in range(runs)]).items()})
        rng = np.random.default_rng(seed + 1)
        picks = rng.integers(n, size=runs)
        queries = np.array(emb[np.sort(picks)])
        for _, a, b in blocks:
            queries[:, a:b] += (0.6 / np.sqrt(b - a)) * rng.standard_normal((runs, b - a)).astype(np.float32)
            queries[:, a:b] /= np.linalg.norm(queries[:, a:b], axis=1, keepdims=True)
        cat_ms, recall = [], []
        for i, q in enumerate(queries):
            t = time.perf_counter()
            index.search(q, Filters(f"cat{i % CATEGORIES:02d}"), top_k=20)
            cat_ms.append((time.perf_counter() - t) * 1e3)
            found = {h.row for h in index.search(q, top_k=10)}
            truth = _brute_top(index, q, 10)
            recall.append(len(found & truth) / 10)
        row.update({f"category_{k}": v for k, v in stats(cat_ms).items()}, recall_at_10=float(np.mean(recall)))
        # a word like "042.wav" is held by one path in 1,000, at any size (paths end in the row's number)
        words = [f"{w:03d}.wav" for w in rng.choice(1000, size=min(runs, 10), replace=False)]
        row.update({f"name_first_{k}": v for k, v in
                    stats([_ms(partial(index.search, queries[0], Filters(name=w), top_k=20)) for w in words]).items()})
        row.update({f"name_{k}": v for k, v in
                    stats([_ms(partial(index.search, q, Filters(name=words[-1]), top_k=20)) for q in queries]).items()})
        # the window's "1–3 s" (a fifth of these sounds, 0.25 to 10 s long): the first search reads
        # every sound's length from the item table, the next ones reuse it and its faiss selector
        lasting = Filters(length=Length(1.0, 3.0))
        row["length_first_ms"] = _ms(partial(index.search, queries[0], lasting, top_k=20))
        row.update({f"length_{k}": v for k, v in
                    stats([_ms(partial(index.search, q, lasting, top_k=20)) for q in queries]).items()})
        # the boxes' counts (the window's worker, after each change of filters): the words and the
        # length of the last searches, kept; then a category chosen with them
        both = Filters(name=words[-1], length=Length(1.0, 3.0))
        row.update({f"facets_{k}": v for k, v in
                    stats([_ms(partial(index.facets, both.but(category=f"cat{i % CATEGORIES:02d}")))
                           for i in range(runs)]).items()})
        print(f"  cold call {row['cold_call_s']:.2f} s ({row['cold_call_peak_rss_gb']:.2f} GB); warm 10 s query "
              f"{row['warm_median_ms']:.0f} ms; --category {row['category_median_ms']:.1f} ms; --name "
              f"{row['name_first_median_ms']:.0f} ms first, {row['name_median_ms']:.1f} ms again; --length "
              f"{row['length_first_ms']:.0f} ms first, {row['length_median_ms']:.1f} ms again; "
              f"the boxes' counts {row['facets_median_ms']:.1f} ms; recall@10 {row['recall_at_10']:.3f}", flush=True)
        del session, index, emb
    return row


def _ms(call) -> float:
    t = time.perf_counter()
    call()
    return (time.perf_counter() - t) * 1e3


def _brute_top(index, query: np.ndarray, k: int) -> set[int]:
    """The exact top ``k`` rows by the index's own scores, in chunks (bounded memory)."""
    best_rows, best_scores = np.zeros(0, np.int64), np.zeros(0, np.float64)
    for start in range(0, len(index), _CHUNK):
        rows = np.arange(start, min(len(index), start + _CHUNK))
        s = index.scores(query, rows) if index.ranking is None or len(index.blocks) == 1 else \
            _chunk_scores(index, query, rows)
        best_rows = np.concatenate([best_rows, rows])
        best_scores = np.concatenate([best_scores, s])
        keep = np.argsort(-best_scores, kind="stable")[:k]
        best_rows, best_scores = best_rows[keep], best_scores[keep]
    return set(best_rows.tolist())


def _chunk_scores(index, query, rows):
    """A fused ranking standardises over its candidates; the search ranks its shortlist by
    the same penalised, weighted block cosines, so compare on those (before z-scoring)."""
    from qvi_app.index.store import _block_scores

    per = _block_scores(np.asarray(index.embeddings[rows]), query, index.blocks)
    total = np.zeros(len(rows))
    for j, (name, _, _) in enumerate(index.blocks):
        w = index.ranking.weights[index.ranking.encoders.index(name)]
        pen = index.penalties[rows, j] * index.ranking.hub_weight if index.penalties is not None else 0.0
        total += w * (per[:, j] - pen)
    return total


def _opt(row: dict, key: str) -> str:
    return f"{row[key]:.1f} ms" if key in row else "–"


def _length(row: dict) -> str:
    if "length_median_ms" not in row:
        return "–"
    return f"{row['length_first_ms']:.0f} / {row['length_median_ms']:.1f} ms"


def _name(row: dict) -> str:
    if "name_median_ms" not in row:
        return "–"
    return f"{row['name_first_median_ms']:.0f} / {row['name_median_ms']:.1f} ms"


def format_scale(rows: list[dict]) -> str:
    lines = ["| refs | dim | build (from embeddings) | build peak RSS | on disk | cold `qvi search` | cold peak RSS | "
             "warm 10 s query | `--category` | `--name` (a new word / again) | `--length` (first / again) | "
             "re-rank after a rating | more like this | the boxes' counts | approximate index RAM | recall@10 |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['references']:,} | {r['dim']} | {r['build_s']:.0f} s | {r['build_peak_rss_gb']:.1f} GB | "
                     f"{r['index_disk_gb']:.1f} GB | {r['cold_call_s']:.2f} s | {r['cold_call_peak_rss_gb']:.2f} GB | "
                     f"{r['warm_median_ms']:.0f} ms | {r['category_median_ms']:.1f} ms | {_name(r)} | {_length(r)} | "
                     f"{_opt(r, 'rerank_median_ms')} | "
                     f"{_opt(r, 'similar_median_ms')} | "
                     f"{_opt(r, 'facets_median_ms')} | "
                     f"{r['ann_memory_mb']:.0f} MB | {r['recall_at_10']:.3f} |")
    return "\n".join(lines)


__all__ = ["bench_scale", "format_scale"]
