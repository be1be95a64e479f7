"""Recall@10 of the approximate index on *real* embeddings of real audio, against brute force.

`qvi bench --scale` measures recall on synthetic rows (noisy copies of the demo embeddings). This
measures it on what the bundled model makes of real sounds: every sound of the training corpus,
../shared/train-sfx, the demo library and the real-dev references, plus two simulated imitations
of each corpus sound (imitation-like rows), about 13,000 rows in all; queries are the 116 recorded
real-dev imitations and one simulated imitation per demo-library sound. For random subsets of a
quarter, a half and all of the rows it builds the approximate index qvi uses (PCA256, IVF, PQ32)
and reports recall@10 of the exact re-scoring of shortlists of several sizes.

    .venv/bin/python scripts/real_recall.py ~/.cache/qvi-corpus ../shared/train-sfx \
        --real-dev ../shared/real-imitations-dev --cache /tmp/real-recall.npz --out docs/real-recall.json

Embedding takes about 6 minutes on 2 cores (cached in --cache); the recall part about 1 minute.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qvi_app.app import prepare_query  # noqa: E402
from qvi_app.audio import isolate_sound, load_audio  # noqa: E402
from qvi_app.data.datasets import open_datasets  # noqa: E402
from qvi_app.data.simulate import SimulatorSettings, imitation_seed, simulate_imitation  # noqa: E402
from qvi_app.encoders import load_encoder  # noqa: E402
from qvi_app.errors import QviError  # noqa: E402
from qvi_app.index.ann import AnnSettings, IvfIndex  # noqa: E402
from qvi_app.paths import DEMO_LIBRARY  # noqa: E402


def embed(corpus: list[Path], real_dev: Path) -> dict[str, np.ndarray]:
    enc = load_encoder("cnn")
    sim = SimulatorSettings()
    rows, queries = [], []

    def imitate(wave, sr, ref_id, k, strategy):
        im = simulate_imitation(wave, sr, imitation_seed(ref_id, k, "recall", 0), sim, strategy)
        return enc.embed(prepare_query(im, sim.sample_rate), sim.sample_rate, role="query")

    for ref in tqdm(open_datasets(corpus).references, desc="corpus", unit="sound"):
        try:
            wave, sr = load_audio(ref.path)
            wave = isolate_sound(wave, sr)
            rows += [enc.embed(wave, sr), imitate(wave, sr, ref.id, 0, None), imitate(wave, sr, ref.id, 1, "follow")]
        except (QviError, ValueError):
            continue
    for ref in tqdm(open_datasets([DEMO_LIBRARY]).references, desc="demo library", unit="sound"):
        wave, sr = load_audio(ref.path)
        wave = isolate_sound(wave, sr)
        rows.append(enc.embed(wave, sr))
        queries.append(imitate(wave, sr, ref.id, 0, "follow"))
    pairs = list(csv.DictReader(open(real_dev / "pairs.csv", newline="")))
    for name in sorted({p["reference"] for p in pairs}):
        wave, sr = load_audio(real_dev / name)
        rows.append(enc.embed(isolate_sound(wave, sr), sr))
    for p in pairs:
        wave, sr = load_audio(real_dev / p["imitation"])
        queries.append(enc.embed(prepare_query(wave, sr), sr, role="query"))
    return {"rows": np.stack(rows).astype(np.float32), "queries": np.stack(queries).astype(np.float32)}


def recall(rows: np.ndarray, queries: np.ndarray, shortlists, seed: int = 0) -> dict:
    out = {}
    rng = np.random.default_rng(seed)
    for share in (0.25, 0.5, 1.0):
        n = int(share * len(rows))
        lib = rows[np.sort(rng.permutation(len(rows))[:n])]
        truth = np.argsort(-(queries @ lib.T), axis=1)[:, :10]
        ann = IvfIndex.build(lib, AnnSettings(threshold=0))
        for k in shortlists:
            hits = []
            for q, t in zip(queries, truth):
                found, _ = ann.search(q, k)
                top = found[np.argsort(-(lib[found] @ q))[:10]]
                hits.append(len(set(top.tolist()) & set(t.tolist())) / 10)
            out.setdefault(str(n), {})[str(k)] = round(float(np.mean(hits)), 3)
            print(f"  {n:,} rows, shortlist {k}: recall@10 {out[str(n)][str(k)]:.3f}", flush=True)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("corpus", type=Path, nargs="+", help="folders of sounds (the training corpus, train-sfx)")
    ap.add_argument("--real-dev", type=Path, required=True)
    ap.add_argument("--cache", type=Path, default=Path("real-recall-embeddings.npz"))
    ap.add_argument("--out", type=Path, default=Path("real-recall.json"))
    ap.add_argument("--shortlists", type=int, nargs="+", default=[100, 200, 400, 800, 1600])
    a = ap.parse_args(argv)
    if a.cache.is_file():
        data = dict(np.load(a.cache))
    else:
        data = embed(a.corpus, a.real_dev)
        np.savez(a.cache, **data)
    print(f"{len(data['rows']):,} rows, {len(data['queries'])} queries", flush=True)
    result = {"rows": int(len(data["rows"])), "queries": int(len(data["queries"])),
              "index": "PCA256,IVF(4 sqrt N),PQ32, nprobe 32 (qvi's AnnSettings)",
              "recall_at_10": recall(data["rows"], data["queries"], a.shortlists)}
    a.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
