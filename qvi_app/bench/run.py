"""``qvi bench``: query latency by stage, indexing throughput, ranking at scale, start-up time.

Each figure is printed next to the physical limit it is bounded by on this machine (measured in
the same run), as a ratio: 1.0 would mean the limit itself.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from qvi_app.app import QviSession, prepare_query
from qvi_app.audio import load_audio, resample
from qvi_app.bench.limits import conv_flops, matmul_throughput, memory_bandwidth
from qvi_app.encoders import load_encoder
from qvi_app.index import IndexItem, ReferenceIndex, update_index
from qvi_app.index.ann import AnnSettings, IvfIndex
from qvi_app.index.store import write_index
from qvi_app.paths import DEMO_INDEX, DEMO_LIBRARY, REPO_ROOT


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = False
    runs: int = 20
    query_seconds: tuple = (5.0, 10.0)
    reference_counts: tuple = (1_000, 10_000, 100_000)
    ranking_counts: tuple = (10_000, 100_000, 1_000_000)
    ranking_dim: int = 512
    index_clips: int | None = None          # None: the whole demo library
    seed: int = 0

    @classmethod
    def make(cls, quick: bool) -> "BenchConfig":
        if quick:
            return cls(quick=True, runs=20, reference_counts=(1_000, 10_000), ranking_counts=(10_000, 100_000),
                       index_clips=60)
        return cls(runs=50)


def stats(ms: list[float]) -> dict:
    a = np.asarray(ms)
    return {"median_ms": float(np.median(a)), "p95_ms": float(np.percentile(a, 95)), "runs": len(a)}


def _query_file(seconds: float, out_dir: Path, session: QviSession) -> Path:
    """A real query of the given length: demo clips end to end (44.1 kHz WAV)."""
    pieces, total, sr = [], 0, 44100
    for it in session.index.items:
        w, _ = load_audio(session.library_root / it.path, target_sr=sr)
        pieces.append(w)
        total += len(w)
        if total >= seconds * sr:
            break
    path = out_dir / f"query_{seconds:g}s.wav"
    sf.write(path, np.concatenate(pieces)[: int(seconds * sr)], sr)
    return path


def _synthetic_index(base: np.ndarray, n: int, out_dir: Path, encoder, rng) -> ReferenceIndex:
    """``n`` references made from the demo embeddings plus noise, in a real index folder."""
    emb = base[rng.integers(len(base), size=n)] + 0.05 * rng.standard_normal((n, base.shape[1])).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    items = [IndexItem(f"synthetic/{i:07d}.wav", f"cat{i % 16:02d}", 2.0, 44100, 1, 0.0, f"{i:064x}") for i in range(n)]
    d = out_dir / f"index_{n}"
    write_index(d, encoder=encoder.describe(), library_root=DEMO_LIBRARY, items=items, embeddings=emb, skipped=[],
                query_banks=encoder.query_banks())
    return ReferenceIndex.open(d)


def bench_query(cfg: BenchConfig, limits: dict, work: Path) -> list[dict]:
    session = QviSession(DEMO_INDEX)
    enc = session.encoder
    parts = getattr(enc, "parts", [enc])                 # the default ``qvi`` encoder is made of parts
    learned = next(p for p in parts if hasattr(p, "features"))
    base = np.asarray(session.index.embeddings)
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for n in cfg.reference_counts:
        index = _synthetic_index(base, n, work, enc, rng)
        for seconds in cfg.query_seconds:
            path = _query_file(seconds, work, session)
            t = {k: [] for k in ("load", "trim", "features", "encoder", "ranking", "total")}
            for _ in range(cfg.runs):
                t0 = time.perf_counter()
                wave, sr = load_audio(path)
                t1 = time.perf_counter()
                trimmed = prepare_query(wave, sr)
                t2 = time.perf_counter()
                with torch.inference_mode():
                    x = torch.from_numpy(resample(trimmed, sr, learned.sample_rate))
                    feats = learned.features(x)
                    t3 = time.perf_counter()
                    vec = learned.model.network(feats, "query")[0].numpy()
                vec = vec / np.linalg.norm(vec)
                vec = np.concatenate([vec if p is learned else p.embed(trimmed, sr, "query") for p in parts])
                t4 = time.perf_counter()
                index.search(vec, top_k=20)
                t5 = time.perf_counter()
                for k, a, b in (("load", t0, t1), ("trim", t1, t2), ("features", t2, t3), ("encoder", t3, t4),
                                ("ranking", t4, t5), ("total", t1, t5)):
                    t[k].append((b - a) * 1e3)
            flops = conv_flops(learned.model.network, feats)
            matrix_bytes = index.embeddings.nbytes
            ranking_limit_ms = 1e3 * matrix_bytes / limits["memory_bandwidth_Bps"]
            encoder_limit_ms = 1e3 * flops / limits["matmul_flops"]
            row = {"references": n, "query_s": seconds, "path": "approximate" if index.ann else "exact",
                   **{f"{k}_{s}": v for k, st in ((k, stats(v)) for k, v in t.items()) for s, v in st.items()
                      if s != "runs"},
                   "encoder_gflop": flops / 1e9, "encoder_limit_ms": encoder_limit_ms,
                   "encoder_vs_limit": float(np.median(t["encoder"])) / encoder_limit_ms,
                   "ranking_limit_ms": ranking_limit_ms,
                   "ranking_vs_limit": float(np.median(t["ranking"])) / ranking_limit_ms}
            rows.append(row)
            print(f"  query {seconds:g} s, {n:>7} refs: total {row['total_median_ms']:.0f} ms median, "
                  f"{row['total_p95_ms']:.0f} ms p95", flush=True)
        shutil.rmtree(index.index_dir, ignore_errors=True)
    return rows


def _copy_clips(files: list[Path], root: Path) -> Path:
    for f in files:
        dest = root / f.relative_to(DEMO_LIBRARY)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)
    return root


def bench_indexing(cfg: BenchConfig, work: Path) -> list[dict]:
    """Indexing throughput per encoder (cnn also with one worker process per core); passt on 10 clips."""
    from qvi_app.encoders.passt import hub_weights_path

    files = sorted(DEMO_LIBRARY.rglob("*.ogg"))[: cfg.index_clips]
    lib = _copy_clips(files, work / "indexing-library")
    rows = []
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    from qvi_app.encoders import onnx_runtime

    runtimes = ("torch", "onnx", "int8")
    cnn = [("cnn", 1, rt) for rt in runtimes] + ([("cnn", cores, rt) for rt in runtimes] if cores > 1 else [])
    plans = cnn + [("2dft", 1, "torch"), ("passt", 1, "torch")]
    for name, workers, runtime in plans:
        clips, root = files, lib
        if runtime in ("onnx", "int8") and not onnx_runtime.available():
            rows.append({"encoder": name, "workers": workers, "runtime": runtime,
                         "skipped": "onnxruntime and onnx are not installed (pip install -e '.[fast]')"})
            continue
        if name == "passt":
            if not hub_weights_path().is_file():
                reason = f"weights not found at {hub_weights_path()}"
                rows.append({"encoder": name, "skipped": reason})
                print(f"  indexing with passt: skipped ({reason})", flush=True)
                continue
            clips = files[:10]
            root = _copy_clips(clips, work / "indexing-library-passt")
        enc = load_encoder(name)
        clip_s = sum(sf.info(f).duration for f in clips)
        t0 = time.perf_counter()
        update_index(root, work / f"ix-{name}-{workers}-{runtime}", enc, show_progress=False, workers=workers,
                     runtime=runtime)
        dt = time.perf_counter() - t0
        rows.append({"encoder": name, "workers": workers, "runtime": runtime, "clips": len(clips), "seconds": dt,
                     "clips_per_s": len(clips) / dt, "x_realtime": clip_s / dt})
        print(f"  indexing with {name} on {runtime}, {workers} process(es): {len(clips) / dt:.1f} clips/s, "
              f"{clip_s / dt:.0f}x real time", flush=True)
    return rows


def bench_simulator(cfg: BenchConfig) -> dict:
    """Simulated imitations per second (one process), on demo clips of typical length."""
    from qvi_app.audio import load_audio
    from qvi_app.data.simulate import simulate_imitation

    clips = [load_audio(f) for f in sorted(DEMO_LIBRARY.rglob("*.ogg"))[:: 15][:40]]
    audio_s = sum(len(w) / sr for w, sr in clips)
    t0 = time.perf_counter()
    for i, (w, sr) in enumerate(clips):
        simulate_imitation(w, sr, seed=i)
    dt = time.perf_counter() - t0
    row = {"clips": len(clips), "mean_clip_s": audio_s / len(clips), "imitations_per_s": len(clips) / dt}
    print(f"  simulator: {row['imitations_per_s']:.1f} imitations/s (clips of {row['mean_clip_s']:.1f} s on average)",
          flush=True)
    return row


def bench_adapter(cfg: BenchConfig) -> dict:
    """Seconds to learn an adapter (``qvi adapt``) from 300 rated queries with a 10,000-sound
    index, 1024-d, as the app calls it (simulated pairs included); the embedding of the saved
    queries, one encoder pass each, is not part of it."""
    from qvi_app.feedback.adapter import AdaptSettings, RatedQuery, train_adapter

    rng = np.random.default_rng(cfg.seed)
    lib = _clustered(10_000, 1024, rng)
    settings = AdaptSettings()

    def near(row: int) -> np.ndarray:
        v = lib[row] + 0.05 * rng.standard_normal(1024).astype(np.float32)
        return v / np.linalg.norm(v)

    targets = rng.integers(len(lib), size=300)
    rated = [RatedQuery(near(t), [int(t)], [int(x) for x in rng.integers(len(lib), size=2)]) for t in targets]
    simulated = [(near(int(t)), int(t)) for t in rng.integers(len(lib), size=settings.simulated_pairs)]
    t0 = time.perf_counter()
    _, report = train_adapter(rated, lib, [("cnn", 0, 1024)], settings, simulated)
    row = {"rated_queries": len(rated), "references": len(lib), "members": settings.members,
           "epochs": settings.epochs, "seconds": time.perf_counter() - t0}
    print(f"  adapter: {row['seconds']:.1f} s for {len(rated)} rated queries ({settings.members} members, "
          f"{settings.epochs} epochs; {report.summary()})", flush=True)
    return row


def _clustered(n: int, d: int, rng) -> np.ndarray:
    centres = rng.standard_normal((max(n // 500, 20), d)).astype(np.float32)
    x = np.empty((n, d), np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        x[s:e] = centres[rng.integers(len(centres), size=e - s)] + 0.8 * rng.standard_normal((e - s, d)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def bench_ranking(cfg: BenchConfig, limits: dict) -> list[dict]:
    """Brute force (float32, float16) vs the approximate path (the compressed index shortlists,
    the shortlist is scored exactly, as a search does) on clustered synthetic vectors."""
    rng = np.random.default_rng(cfg.seed)
    rows = []
    for n in cfg.ranking_counts:
        x = _clustered(n, cfg.ranking_dim, rng)
        nq = 50
        q = x[rng.integers(n, size=nq)] + 0.03 * rng.standard_normal((nq, cfg.ranking_dim)).astype(np.float32)
        q /= np.linalg.norm(q, axis=1, keepdims=True)
        x16 = x.astype(np.float16)
        t32, t16, truth = [], [], []
        for v in q:
            t0 = time.perf_counter()
            s = x @ v
            top = np.argpartition(-s, 10)[:10]
            t32.append((time.perf_counter() - t0) * 1e3)
            truth.append(set(top.tolist()))
            t0 = time.perf_counter()
            s16 = x16 @ v.astype(np.float16)
            np.argpartition(-s16, 10)[:10]
            t16.append((time.perf_counter() - t0) * 1e3)
        settings = AnnSettings()
        t0 = time.perf_counter()
        ann = IvfIndex.build(x, settings)
        build_s = time.perf_counter() - t0
        ta, recall = [], []
        for v, tr in zip(q, truth):
            t0 = time.perf_counter()           # as the index searches: compressed shortlist, refined, then exact
            keep = settings.kept(10)
            found, _ = ann.search(v, max(keep, ann.shortlist), keep=keep)
            cand = np.sort(found)
            top = cand[np.argsort(-(x[cand] @ v), kind="stable")[:10]]
            ta.append((time.perf_counter() - t0) * 1e3)
            recall.append(len(set(top.tolist()) & tr) / 10)
        limit_ms = 1e3 * x.nbytes / limits["memory_bandwidth_Bps"]
        row = {"references": n, "dim": cfg.ranking_dim,
               "brute_f32_median_ms": float(np.median(t32)), "brute_f32_MB": x.nbytes / 1e6,
               "brute_f32_vs_limit": float(np.median(t32)) / limit_ms,
               "brute_f16_median_ms": float(np.median(t16)), "brute_f16_MB": x16.nbytes / 1e6,
               "ann_median_ms": float(np.median(ta)), "ann_p95_ms": float(np.percentile(ta, 95)),
               "ann_recall_at_10": float(np.mean(recall)), "ann_build_s": build_s, "ann_MB": ann.memory_bytes() / 1e6,
               "bandwidth_limit_ms": limit_ms}
        rows.append(row)
        print(f"  ranking {n:>8}: brute f32 {row['brute_f32_median_ms']:.1f} ms, f16 {row['brute_f16_median_ms']:.1f} ms,"
              f" ann {row['ann_median_ms']:.2f} ms (recall@10 {row['ann_recall_at_10']:.3f}, build {build_s:.1f} s)",
              flush=True)
        del x, x16, ann
    return rows


def bench_where(cfg: BenchConfig) -> list[dict]:
    """Seconds to find where a 2 s query matches in long sounds (demo clips end to end; the
    window does it on a worker when a long result is selected): one scan each, no cache."""
    session = QviSession()
    sr = 44100
    clips = [load_audio(session.library_root / it.path, target_sr=sr)[0] for it in session.index.items[:60]]
    query = session.search_wave(clips[0][: 2 * sr], sr, top_k=1)
    rows = []
    for seconds in (10, 30, 60) if cfg.quick else (10, 30, 60, 600):
        wave = np.concatenate(clips * (1 + int(seconds * sr) // sum(len(c) for c in clips)))[: seconds * sr]
        t0 = time.perf_counter()
        match = session.where_it_matches(query, wave, sr)
        rows.append({"sound_s": seconds, "seconds": time.perf_counter() - t0, "windows": len(match.centres)})
        print(f"  where it matches: {seconds} s of sound in {rows[-1]['seconds']:.2f} s", flush=True)
    return rows


def bench_startup() -> dict:
    """Seconds from ``python main.py`` to a usable window, and from import to the first answer."""
    py = sys.executable
    code = ("import time; t=time.perf_counter(); from qvi_app.app import QviSession; s=QviSession(); "
            "t1=time.perf_counter(); s.search_file(s.library_root / s.index.items[0].path); "
            "print(time.perf_counter()-t, t1-t)")
    out = subprocess.run([py, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    result = {"import_to_first_query_s": float(out[0]), "import_and_load_s": float(out[1])}
    display, xvfb = os.environ.get("DISPLAY"), None
    if not display and shutil.which("Xvfb"):
        display = ":271"
        xvfb = subprocess.Popen(["Xvfb", display, "-nolisten", "tcp"], stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    if not display:
        result["window_ready_s"] = None
        result["window_skipped"] = "no display and no Xvfb"
        return result
    try:
        with tempfile.TemporaryDirectory() as data:
            env = {**os.environ, "DISPLAY": display, "QVI_DATA_DIR": data, "PYTHONUNBUFFERED": "1"}
            t0 = time.perf_counter()
            app = subprocess.Popen([py, str(REPO_ROOT / "main.py")], env=env, stderr=subprocess.PIPE, text=True)
            for line in app.stderr:
                if "ready" in line:
                    result["window_ready_s"] = time.perf_counter() - t0
                    break
            app.kill()
            app.wait()
    finally:
        if xvfb:
            xvfb.terminate()
    return result


def run(cfg: BenchConfig, json_path: Path | None) -> dict:
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"qvi bench ({'quick' if cfg.quick else 'full'}) on {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, torch threads {torch.get_num_threads()}", flush=True)
    limits = {"memory_bandwidth_Bps": memory_bandwidth(), "matmul_flops": matmul_throughput()}
    print(f"  limits: memory bandwidth {limits['memory_bandwidth_Bps'] / 1e9:.1f} GB/s, "
          f"matmul {limits['matmul_flops'] / 1e9:.0f} GFLOP/s", flush=True)
    with tempfile.TemporaryDirectory(prefix="qvi-bench-") as tmp:
        work = Path(tmp)
        report = {"config": asdict(cfg), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                     "torch": torch.__version__},
                  "limits": limits,
                  "query": bench_query(cfg, limits, work),
                  "indexing": bench_indexing(cfg, work),
                  "simulator": bench_simulator(cfg),
                  "adapter": bench_adapter(cfg),
                  "ranking": bench_ranking(cfg, limits),
                  "where": bench_where(cfg),
                  "startup": bench_startup()}
    print()
    print(format_table(report))
    if json_path:
        json_path.write_text(json.dumps(report, indent=2))
        print(f"\nwrote {json_path}")
    return report


def format_table(r: dict) -> str:
    lines = ["| query | refs | path | load | trim | features | encoder | ranking | total median | total p95 | encoder / FLOP limit | ranking / bandwidth limit |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for q in r["query"]:
        lines.append(f"| {q['query_s']:g} s | {q['references']:,} | {q['path']} | {q['load_median_ms']:.1f} | "
                     f"{q['trim_median_ms']:.1f} | {q['features_median_ms']:.1f} | {q['encoder_median_ms']:.1f} | "
                     f"{q['ranking_median_ms']:.2f} | **{q['total_median_ms']:.0f} ms** | {q['total_p95_ms']:.0f} ms | "
                     f"{q['encoder_vs_limit']:.1f}x ({q['encoder_gflop']:.1f} GFLOP) | {q['ranking_vs_limit']:.1f}x |")
    lines += ["", "| encoder | runtime | processes | clips | clips/s | x real time |", "|---|---|---|---|---|---|"]
    lines += [f"| {i['encoder']} | {i.get('runtime', 'torch')} | {i.get('workers', 1)} | {i['clips']} | "
              f"{i['clips_per_s']:.1f} | {i['x_realtime']:.0f} |"
              if "skipped" not in i else f"| {i['encoder']} | {i.get('runtime', 'torch')} | skipped: {i['skipped']} | | | |"
              for i in r["indexing"]]
    lines += ["", "| refs (512-d) | brute f32 | f32 / bandwidth limit | brute f16 | approximate | recall@10 | build | memory f32 / ann |",
              "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {k['references']:,} | {k['brute_f32_median_ms']:.1f} ms | {k['brute_f32_vs_limit']:.1f}x | "
              f"{k['brute_f16_median_ms']:.1f} ms | {k['ann_median_ms']:.2f} ms (p95 {k['ann_p95_ms']:.2f}) | "
              f"{k['ann_recall_at_10']:.3f} | {k['ann_build_s']:.1f} s | {k['brute_f32_MB']:.0f} / {k['ann_MB']:.0f} MB |"
              for k in r["ranking"]]
    ad = r.get("adapter")
    if ad:
        lines += ["", f"learning an adapter (`qvi adapt`): {ad['seconds']:.1f} s for {ad['rated_queries']} rated queries "
                      f"against {ad['references']:,} sounds ({ad['members']} members, {ad['epochs']} epochs)"]
    sim = r.get("simulator")
    if sim:
        lines += ["", f"imitation simulator: {sim['imitations_per_s']:.1f} imitations/s in one process "
                      f"({sim['clips']} demo clips, {sim['mean_clip_s']:.1f} s on average)"]
    if r.get("where"):
        lines += ["", "where a 2 s query matches in a long sound (J in the window, `qvi search --where`): " +
                  ", ".join(f"{w['sound_s']} s of sound in {w['seconds']:.2f} s" for w in r["where"])]
    s = r["startup"]
    window = f"{s['window_ready_s']:.1f} s" if s.get("window_ready_s") else f"skipped ({s.get('window_skipped')})"
    lines += ["", f"start-up: main.py → window ready {window}; import → model and index loaded "
                  f"{s['import_and_load_s']:.1f} s; import → first answer {s['import_to_first_query_s']:.1f} s"]
    return "\n".join(lines)
