"""How often qvi finds where in a long sound a real imitation matches (qvi_app.ranking.where).

Each imitation of a real-imitation set (a folder with pairs.csv: label, reference, imitation,
generation, as ../shared/real-imitations-dev) is searched in ``--scenes`` made-up long sounds:
its reference among 3 sounds drawn from a library at random, each at a random level (0 to
-12 dB) with 0.3 s of silence after it. A scene counts as found when the middle of the best
window (where qvi says it matches) lies inside the reference. Two yardsticks: the loudest window
of the same length, and chance (the reference's share of the scene). The set is only read, never
copied.

With ``--copies N`` the reference is in each scene N times (a dog barking twice in a field
recording) and the scene also counts as ``found_all`` when the first N places qvi offers
(``Match.places``: J goes through them, best first) each lie in a different copy; chance of that
is N! times the product of the copies' shares.

    .venv/bin/python scripts/measure_where.py ../shared/real-imitations-dev --library assets/library \\
        [--generation 1] [--scenes 3] [--seed 0] [--copies 1] [--out FILE.json]

The imitations are searched through the bundled model and its demo index, as the window does.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qvi_app.app import QviSession  # noqa: E402
from qvi_app.audio import AUDIO_EXTENSIONS, load_audio, resample  # noqa: E402
from qvi_app.ranking.where import WINDOW_S, window_starts  # noqa: E402

OTHERS = 3           # library sounds in a scene beside the reference
OTHER_MAX_S = 8.0    # each cut to its first seconds, so that a scene is a minute at most
GAP_S = 0.3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("pairs_dir", type=Path)
    ap.add_argument("--library", type=Path, required=True)
    ap.add_argument("--generation", default="1")
    ap.add_argument("--scenes", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--copies", type=int, default=1, help="the reference this many times in each scene")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    session = QviSession()
    sr = session.encoder.sample_rate
    library = sorted(p for p in a.library.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    with open(a.pairs_dir / "pairs.csv", newline="", encoding="utf-8") as f:
        pairs = [r for r in csv.DictReader(f) if r["generation"] == a.generation]

    def load(path: Path) -> np.ndarray:
        wave, rate = load_audio(path)
        return resample(np.asarray(wave, np.float32), rate, sr)

    rng = random.Random(a.seed)
    found, loudest, chance, found_all, chance_all = [], [], [], [], []
    t0 = time.perf_counter()
    for n, pair in enumerate(pairs, 1):
        result = session.search_wave(load(a.pairs_dir / pair["imitation"]), sr, top_k=1)
        reference = load(a.pairs_dir / pair["reference"])
        for _ in range(a.scenes):
            parts = [load(p)[: int(OTHER_MAX_S * sr)] for p in rng.sample(library, OTHERS)]
            # where the copies go (one copy: drawn as before --copies, so that earlier figures reproduce)
            at = [rng.randrange(OTHERS + 1)] if a.copies == 1 else sorted(rng.sample(range(OTHERS + a.copies), a.copies))
            for i in at:
                parts.insert(i, reference)
            parts = [p / (np.abs(p).max() + 1e-9) * 10 ** (rng.uniform(-12, 0) / 20) for p in parts]
            gap = np.zeros(int(GAP_S * sr), np.float32)
            scene = np.concatenate([x for p in parts for x in (p, gap)])
            seconds = len(scene) / sr
            copies = [(s0, s0 + len(reference) / sr) for s0 in (sum(len(p) + len(gap) for p in parts[:i]) / sr
                                                                for i in at)]

            def inside(t):
                return next((k for k, (s0, s1) in enumerate(copies) if s0 <= t < s1), None)

            match = session.where_it_matches(result, scene, sr)
            found.append(inside(match.centre) is not None)
            starts = window_starts(0.0, seconds, WINDOW_S)
            rms = [float(np.sqrt(np.mean(scene[int(s * sr): int((s + WINDOW_S) * sr)] ** 2))) for s in starts]
            loudest.append(inside(starts[int(np.argmax(rms))] + WINDOW_S / 2) is not None)
            shares = [(s1 - s0) / seconds for s0, s1 in copies]
            chance.append(sum(shares))
            hit = {inside((p0 + p1) / 2) for p0, p1 in match.places()[: a.copies]}
            found_all.append(hit == set(range(a.copies)))
            chance_all.append(float(np.prod(shares)) * float(np.prod(range(1, a.copies + 1))))
        print(f"\r{n}/{len(pairs)} imitations, found {np.mean(found):.2f}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    report = {"pairs": str(a.pairs_dir), "generation": a.generation, "library": str(a.library),
              "scenes": len(found), "seed": a.seed, "found": round(float(np.mean(found)), 3),
              "loudest_window": round(float(np.mean(loudest)), 3), "chance": round(float(np.mean(chance)), 3),
              "copies": a.copies, "found_all": round(float(np.mean(found_all)), 3),
              "chance_all": round(float(np.mean(chance_all)), 3),
              "seconds": round(time.perf_counter() - t0, 1)}
    print(json.dumps(report, indent=2))
    if a.out:
        a.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
