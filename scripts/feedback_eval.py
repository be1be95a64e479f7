#!/usr/bin/env python
"""Measure relevance-feedback rules with a simulated user (the protocol of docs/FEEDBACK.md).

After the first ranking the simulated user marks ▲ the highest-ranked result of the query's
category that is not the imitated sound itself, if it is in the top 20, and ▼ the two highest
results of other categories. Reported: item MRR of the imitated sound among the *unrated*
results, before and after one round, for each rule, and the share of the query's category among
the first 10 unrated results ("p@10": what a user browsing for "more like the one I liked"
sees). Two sets of queries:

* real imitations (``--real``, e.g. ../shared/real-imitations-dev; measured, never trained on)
  ranked among their references plus the demo library, gen 1 and gen 2 apart;
* simulated imitations of the demo library (one per sound), ranked among the library.

    python scripts/feedback_eval.py [--real DIR] [--checkpoint MODEL] [--out docs/feedback-eval.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qvi_app.app import prepare_query  # noqa: E402
from qvi_app.audio import load_audio, trim_silence  # noqa: E402
from qvi_app.data import open_dataset  # noqa: E402
from qvi_app.data.simulate import simulate_imitation  # noqa: E402
from qvi_app.encoders import load_encoder  # noqa: E402
from qvi_app.index.scan import scan_library  # noqa: E402
from qvi_app.index.store import _block_scores, library_penalties  # noqa: E402
from qvi_app.paths import DEMO_LIBRARY  # noqa: E402
from qvi_app.ranking import fused_scores  # noqa: E402
from qvi_app.ranking.feedback import FeedbackSettings, moved_query, shortlist_scores  # noqa: E402

CANDIDATES = {
    "rocchio b.5 g.25": FeedbackSettings("rocchio", beta=0.5, gamma=0.25),
    "rocchio b1 g.5": FeedbackSettings("rocchio", beta=1.0, gamma=0.5),
    "weighted b.5 g.3": FeedbackSettings("weighted", beta=0.5, gamma=0.3),
    "weighted b.3 g.6": FeedbackSettings("weighted", beta=0.3, gamma=0.6),
    "shortlist b.3 g.3": FeedbackSettings("shortlist", beta=0.3, gamma=0.3),
    "shortlist b.5 g.3": FeedbackSettings("shortlist", beta=0.5, gamma=0.3),
    "shortlist b.5 g.5": FeedbackSettings("shortlist", beta=0.5, gamma=0.5),
    "shortlist b0 g.5": FeedbackSettings("shortlist", beta=0.0, gamma=0.5),
}


class Candidates:
    """Embeddings of the candidates and the scoring the index would apply to them."""

    def __init__(self, emb: np.ndarray, cats: list[str], enc):
        self.emb, self.cats = emb, np.array(cats)
        self.blocks = getattr(enc, "blocks", None)
        self.ranking = getattr(enc, "ranking", None)
        self.penalties = (library_penalties(emb, self.blocks, self.ranking)
                          if self.ranking is not None and self.ranking.hub_bank == "library" else None)

    def scores(self, q: np.ndarray) -> np.ndarray:
        if self.ranking is None:
            return self.emb @ q
        per = _block_scores(self.emb, q, self.blocks)
        names = [n for n, _, _ in self.blocks]
        pen = None if self.penalties is None else {n: self.penalties[:, j] for j, n in enumerate(names)}
        return fused_scores({n: per[:, j] for j, n in enumerate(names)}, self.ranking, pen)


def one_round(c: Candidates, q: np.ndarray, target: int, category: str, rules: dict) -> dict:
    s0 = c.scores(q)
    order = np.argsort(-s0, kind="stable")
    liked = [i for i in order[:20] if c.cats[i] == category and i != target][:1]
    disliked = [i for i in order if c.cats[i] != category][:2]
    rated = set(liked) | set(disliked)

    def measure(name: str, scores_order) -> None:
        unrated = [i for i in scores_order if i not in rated]
        out[name] = 1.0 / (1 + unrated.index(target)) if target in unrated else 0.0
        out[f"{name} p@10"] = float(np.mean(c.cats[unrated[:10]] == category))

    out: dict[str, float] = {}
    measure("before", order)
    L, D = c.emb[liked], c.emb[disliked]
    for name, s in rules.items():
        if s.rule == "shortlist":
            top = order[: s.shortlist]
            new = shortlist_scores(s0[top], c.emb[top], q, L, D, s, c.blocks)
            new_order = list(top[np.argsort(-new, kind="stable")]) + list(order[s.shortlist:])
        else:
            new_order = np.argsort(-c.scores(moved_query(q, L, D, s, c.blocks)), kind="stable")
        measure(name, list(new_order))
    return out


def run(real: Path | None, checkpoint, imitations_seed: int = 0) -> dict:
    enc = load_encoder("qvi", checkpoint)
    lib = scan_library(DEMO_LIBRARY)
    lib_audio = [load_audio(DEMO_LIBRARY / f.relpath) for f in lib]
    lib_emb = np.stack([enc.embed(w, sr) for w, sr in lib_audio])
    report = {"encoder": enc.id, "rules": {k: v.to_dict() for k, v in CANDIDATES.items()}}

    results = []                                  # simulated imitations of the demo library
    c = Candidates(lib_emb, [f.category for f in lib], enc)
    for i, ((w, sr), f) in enumerate(zip(lib_audio, lib)):
        imi = simulate_imitation(trim_silence(w, sr), sr, 1_000_003 * imitations_seed + i)
        q = enc.embed(prepare_query(imi, 16000), 16000, role="query")
        results.append(one_round(c, q, i, f.category, CANDIDATES))
    report["demo library, simulated imitations"] = _mean(results)

    if real is not None:
        ds = open_dataset(real)
        refs = ds.references
        ref_emb = np.stack([enc.embed(*load_audio(r.path)) for r in refs])
        c = Candidates(np.concatenate([ref_emb, lib_emb]), [r.category for r in refs] + [f.category for f in lib], enc)
        by_group: dict[str, list] = {}
        for t, r in enumerate(refs):
            for path, group in zip(r.imitations, r.groups):
                w, sr = load_audio(path)
                q = enc.embed(prepare_query(w, sr), sr, role="query")
                by_group.setdefault(group, []).append(one_round(c, q, t, r.category, CANDIDATES))
        for g, rows in sorted(by_group.items()):
            report[f"real imitations {g}, among the demo library"] = _mean(rows)
    return report


def _mean(rows: list[dict]) -> dict:
    return {"queries": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, help="a folder of real imitations (pairs.csv layout)")
    ap.add_argument("--checkpoint", type=Path, help="learned model (default: the bundled one)")
    ap.add_argument("--out", type=Path, default=Path("feedback-eval.json"))
    a = ap.parse_args(argv)
    report = run(a.real, a.checkpoint)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    for setting, row in report.items():
        if isinstance(row, dict) and "before" in row:
            deltas = "; ".join(f"{k} {row[k] - row['before']:+.3f}/{row[k + ' p@10'] - row['before p@10']:+.3f}"
                               for k in CANDIDATES)
            print(f"{setting} ({row['queries']} queries): MRR/p@10 before {row['before']:.3f}/"
                  f"{row['before p@10']:.3f}; {deltas}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
