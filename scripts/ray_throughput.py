#!/usr/bin/env python
"""Indexing throughput on a Ray cluster of 1 and 2 worker nodes, and where more nodes stop helping.

The nodes are real Ray nodes (raylets) started on this machine with ``ray.cluster_utils.Cluster``,
one CPU each, so 2 nodes here share this machine's cores: the figure per node is what one
single-core node delivers. The driver's own cost per file (hashing the file, recording the
result, Ray's own cost per call) is measured apart: it bounds any cluster, however large. The projection for
10, 100 and 1,000 nodes is min(nodes x per-node rate, driver rate), and the shared file system
must serve every file twice (the worker decodes it, the driver hashes it).

    python scripts/ray_throughput.py [--library assets/library] [--out docs/ray-throughput.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qvi_app.app import build_index  # noqa: E402
from qvi_app.index.build import file_sha256  # noqa: E402
from qvi_app.index.progress_store import ProgressStore  # noqa: E402
from qvi_app.index.scan import scan_library  # noqa: E402


def cluster_rate(library: Path, nodes: int) -> dict:
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})   # the head only drives
    for _ in range(nodes):
        cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            report = build_index(library, Path(tmp) / "ix", engine="ray", show_progress=False)
            wall = time.perf_counter() - t
    finally:
        ray.shutdown()
        cluster.shutdown()
    return {"nodes": nodes, "files": report.embedded, "wall_s": wall, "files_per_s": report.embedded / wall}


def driver_rate(library: Path) -> dict:
    """Seconds the driver spends per file besides waiting for embeddings."""
    files = scan_library(library)
    t = time.perf_counter()
    digests = [file_sha256(library / f.relpath) for f in files]
    hashing = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        store = ProgressStore(Path(tmp), "bench", 1024)
        vec = np.ones(1024, np.float32) / 32
        t = time.perf_counter()
        for f, d in zip(files, digests):
            store.add(f.relpath, f.size, f.mtime, d, 3.0, 44100, vec)
        recording = time.perf_counter() - t
        store.close()
    per_file = (hashing + recording) / len(files)
    return {"files": len(files), "mean_file_mb": float(np.mean([f.size for f in files])) / 1e6,
            "hash_ms": 1e3 * hashing / len(files), "record_ms": 1e3 * recording / len(files),
            "files_per_s": 1 / per_file}


def task_rate(calls: int = 4000) -> float:
    """Actor calls per second one driver gets through with qvi's in-flight bound (no work in them)."""
    from collections import deque

    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        @ray.remote(num_cpus=1)
        class Noop:
            def embed(self, path):
                return "ok", None, 0.0, 0

        pool = [Noop.remote() for _ in range(2)]
        ray.get([a.embed.remote("") for a in pool])
        pending: deque = deque()
        t = time.perf_counter()
        for k in range(calls):
            pending.append(pool[k % 2].embed.remote(str(k)))
            if len(pending) >= 8:
                ray.get(pending.popleft())
        ray.get(list(pending))
        return calls / (time.perf_counter() - t)
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--library", type=Path, default=Path("assets/library"))
    ap.add_argument("--out", type=Path, default=Path("ray-throughput.json"))
    a = ap.parse_args()
    rows = [cluster_rate(a.library, n) for n in (1, 2)]
    driver = driver_rate(a.library)
    driver["ray_calls_per_s"] = task_rate()
    driver["files_per_s"] = 1 / (1 / driver["files_per_s"] + 1 / driver["ray_calls_per_s"])
    per_node = rows[0]["files_per_s"]
    projection = [{"nodes": n, "files_per_s": min(n * per_node, driver["files_per_s"]),
                   "limit": "nodes" if n * per_node < driver["files_per_s"] else "driver",
                   "shared_fs_mb_per_s": 2 * min(n * per_node, driver["files_per_s"]) * driver["mean_file_mb"]}
                  for n in (10, 100, 1000)]
    out = {"measured": rows, "driver": driver, "projection": projection}
    a.out.write_text(json.dumps(out, indent=2))
    for r in rows:
        print(f"{r['nodes']} node(s): {r['files']} files in {r['wall_s']:.1f} s = {r['files_per_s']:.1f} files/s")
    print(f"driver: hash {driver['hash_ms']:.2f} ms + record {driver['record_ms']:.2f} ms per file, "
          f"{driver['ray_calls_per_s']:.0f} Ray calls/s = {driver['files_per_s']:.0f} files/s at most "
          f"(mean file {driver['mean_file_mb']:.2f} MB)")
    for p in projection:
        print(f"{p['nodes']:>5} nodes: {p['files_per_s']:.0f} files/s ({p['limit']}-bound), shared storage "
              f"{p['shared_fs_mb_per_s']:.0f} MB/s")


if __name__ == "__main__":
    main()
