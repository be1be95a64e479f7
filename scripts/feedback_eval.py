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

With ``--adapt``, also the user-adapter protocol: leave one reference out over the real
imitations (an adapter is trained on the ratings of the other references' imitations: ▲ on the
imitated sound, ▼ on the two highest results of other categories; the simulator's pairs as its
regulariser, as in the app), then the held-out reference's imitations are ranked before and after,
and so are the simulated imitations of the demo library (no loss there is the other goal). The
adapters are measured and thrown away; nothing trained here is kept or shipped.

    python scripts/feedback_eval.py [--real DIR] [--checkpoint MODEL] [--adapt] [--out docs/feedback-eval.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from qvi_app.app import prepare_query  # noqa: E402
from qvi_app.audio import isolate_sound, load_audio, trim_silence  # noqa: E402
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
CANDIDATES = {k: FeedbackSettings(**{**v.to_dict(), "category_beta": 0.0}) for k, v in CANDIDATES.items()}
# ... and the category term (a ▲ also lifts the liked sound's category, in shortlist spreads)
CANDIDATES.update({f"shortlist b.5 g.5 cat {c:g}": FeedbackSettings("shortlist", beta=0.5, gamma=0.5, category_beta=c)
                   for c in (0.25, 0.5, 1.0, 2.0)})


class Candidates:
    """Embeddings of the candidates and the scoring the index would apply to them."""

    def __init__(self, emb: np.ndarray, cats: list[str], enc):
        self.emb, self.cats = emb, np.array(cats)
        self.blocks = getattr(enc, "blocks", None)
        self.ranking = getattr(enc, "ranking", None)
        # the penalties the index would store (against the library, or the model's query bank)
        self.penalties = (library_penalties(emb, self.blocks, self.ranking, query_banks=enc.query_banks())
                          if self.ranking is not None and self.ranking.hub_bank != "none" else None)
        self.codes = np.unique(self.cats, return_inverse=True)[1]

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
            new = shortlist_scores(s0[top], c.emb[top], q, L, D, s, c.blocks, categories=c.codes[top],
                                   liked_categories=c.codes[liked])
            new_order = list(top[np.argsort(-new, kind="stable")]) + list(order[s.shortlist:])
        else:
            new_order = np.argsort(-c.scores(moved_query(q, L, D, s, c.blocks)), kind="stable")
        measure(name, list(new_order))
    return out


def run(real: Path | None, checkpoint, imitations_seed: int = 0, adapt: bool = False) -> dict:
    enc = load_encoder("qvi", checkpoint)
    lib = scan_library(DEMO_LIBRARY)
    lib_audio = [load_audio(DEMO_LIBRARY / f.relpath) for f in lib]
    lib_emb = np.stack([enc.embed(isolate_sound(w, sr), sr) for w, sr in lib_audio])     # as the index embeds
    report = {"encoder": enc.id, "rules": {k: v.to_dict() for k, v in CANDIDATES.items()}}

    results, sim_queries = [], []                 # simulated imitations of the demo library
    c = Candidates(lib_emb, [f.category for f in lib], enc)
    lib_c = c
    for i, ((w, sr), f) in enumerate(zip(lib_audio, lib)):
        imi = simulate_imitation(trim_silence(w, sr), sr, 1_000_003 * imitations_seed + i)
        q = enc.embed(prepare_query(imi, 16000), 16000, role="query")
        sim_queries.append(q)
        results.append(one_round(c, q, i, f.category, CANDIDATES))
    report["demo library, simulated imitations"] = _mean(results)

    if real is not None:
        ds = open_dataset(real)
        refs = ds.references
        ref_emb = np.stack([enc.embed(isolate_sound(*load_audio(r.path)), load_audio(r.path)[1]) for r in refs])
        c = Candidates(np.concatenate([ref_emb, lib_emb]), [r.category for r in refs] + [f.category for f in lib], enc)
        by_group: dict[str, list] = {}
        real_queries = []                             # (vector, reference row, group)
        for t, r in enumerate(refs):
            for path, group in zip(r.imitations, r.groups):
                w, sr = load_audio(path)
                q = enc.embed(prepare_query(w, sr), sr, role="query")
                real_queries.append((q, t, group))
                by_group.setdefault(group, []).append(one_round(c, q, t, r.category, CANDIDATES))
        for g, rows in sorted(by_group.items()):
            report[f"real imitations {g}, among the demo library"] = _mean(rows)
        if adapt:
            report["adaptation"] = leave_one_reference_out(enc, c, lib_c, lib_audio, real_queries, sim_queries)
    return report


def _rr(c: Candidates, q: np.ndarray, target: int) -> float:
    s = c.scores(q)
    return 1.0 / (1 + int(np.sum(s > s[target])))


#: The adapter settings compared under the leave-one-reference-out protocol (min_gain -1: every
#: adapter is kept, to be measured; the app refuses below +0.02).
ADAPTERS = {"one adapter": dict(members=1, anchor_weight=0.0), "four averaged": dict(members=4, anchor_weight=0.0),
            "four averaged, anchored (default)": dict(members=4)}
SEEDS = (0, 1, 2)
REGULARISER_SEEDS = 7_000_003                 # a seed namespace apart from the simulated test imitations


def leave_one_reference_out(enc, c: Candidates, lib_c: Candidates, lib_audio, real_queries, sim_queries) -> dict:
    """The adapter protocol (module docstring), for each of ADAPTERS and SEEDS: MRR before/after per
    group, the gain's 95% interval by a bootstrap over references (queries of one reference move
    together), and the simulated set before/after."""
    from qvi_app.feedback.adapter import AdaptSettings, RatedQuery, query_bank_anchors, train_adapter

    n_refs = len(c.cats) - len(lib_c.cats)
    rng = np.random.default_rng(0)
    simulated = []
    for row in rng.choice(len(lib_audio), size=AdaptSettings().simulated_pairs, replace=False):
        w, sr = lib_audio[row]
        imi = simulate_imitation(isolate_sound(w, sr), sr, REGULARISER_SEEDS + int(row))
        simulated.append((enc.embed(prepare_query(imi, 16000), 16000, role="query"), n_refs + int(row)))
    anchors = query_bank_anchors(enc, c.blocks)
    targets = np.array([t for _, t, _ in real_queries])
    groups = np.array([g for _, _, g in real_queries])
    before = np.array([_rr(c, q, t) for q, t, _ in real_queries])
    ratings = []                                  # the simulated user's, the same for every adapter
    for q, t, _ in real_queries:
        order = np.argsort(-c.scores(q), kind="stable")
        ratings.append(RatedQuery(q, [t], [int(i) for i in order if c.cats[i] != c.cats[t]][:2]))
    sim_before = float(np.mean([_rr(lib_c, q, i) for i, q in enumerate(sim_queries)]))
    out = {}
    for name, overrides in ADAPTERS.items():
        after = np.zeros((len(SEEDS), len(real_queries)))
        sim_after, kept = np.zeros((len(SEEDS), n_refs)), []
        for si, seed in enumerate(SEEDS):
            settings = AdaptSettings(min_gain=-1.0, seed=seed, **overrides)
            for held in range(n_refs):
                rated = [r for r, t in zip(ratings, targets) if t != held]
                adapter, report = train_adapter(rated, c.emb, c.blocks, settings, simulated, anchors=anchors)
                kept.append(report.mrr_after - report.mrr_before >= AdaptSettings().min_gain)
                for k in np.flatnonzero(targets == held):
                    after[si, k] = _rr(c, adapter.apply(real_queries[k][0]), held)
                sim_after[si, held] = np.mean([_rr(lib_c, adapter.apply(q), i) for i, q in enumerate(sim_queries)])
            print(f"  {name}, seed {seed}: real MRR {before.mean():.3f} -> {after[si].mean():.3f}", flush=True)
        row = {}
        for g in ["all"] + sorted(set(groups)):
            m = np.ones(len(groups), bool) if g == "all" else groups == g
            gains = after[:, m].mean(1) - before[m].mean()
            low, high = _bootstrap_by_reference(after[:, m].mean(0) - before[m], targets[m])
            row[g] = {"queries": int(m.sum()), "before": float(before[m].mean()), "after": float(after[:, m].mean()),
                      "gain by seed": [round(float(x), 4) for x in gains], "gain 95% interval": [low, high]}
        row["demo library, simulated"] = {"queries": len(sim_queries), "before": sim_before,
                                          "after": float(sim_after.mean()),
                                          "gain by seed": [round(float(x) - sim_before, 4) for x in sim_after.mean(1)]}
        row["kept by the app"] = f"{sum(kept)} of {len(kept)}"
        out[name] = row
    return out


def _bootstrap_by_reference(gains: np.ndarray, refs: np.ndarray, draws: int = 10_000) -> list[float]:
    """95% interval of the mean per-query gain, references drawn with replacement."""
    rng = np.random.default_rng(0)
    ids = np.unique(refs)
    sums = np.array([gains[refs == r].sum() for r in ids])
    counts = np.array([(refs == r).sum() for r in ids])
    pick = rng.integers(len(ids), size=(draws, len(ids)))
    means = sums[pick].sum(1) / counts[pick].sum(1)
    return [round(float(x), 4) for x in np.percentile(means, [2.5, 97.5])]


def _mean(rows: list[dict]) -> dict:
    return {"queries": len(rows), **{k: float(np.mean([r[k] for r in rows])) for k in rows[0]}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", type=Path, help="a folder of real imitations (pairs.csv layout)")
    ap.add_argument("--checkpoint", type=Path, help="learned model (default: the bundled one)")
    ap.add_argument("--adapt", action="store_true", help="also the leave-one-reference-out adapter protocol")
    ap.add_argument("--out", type=Path, default=Path("feedback-eval.json"))
    a = ap.parse_args(argv)
    report = run(a.real, a.checkpoint, adapt=a.adapt)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    for setting, row in report.items():
        if isinstance(row, dict) and "before" in row:
            deltas = "; ".join(f"{k} {row[k] - row['before']:+.3f}/{row[k + ' p@10'] - row['before p@10']:+.3f}"
                               for k in CANDIDATES)
            print(f"{setting} ({row['queries']} queries): MRR/p@10 before {row['before']:.3f}/"
                  f"{row['before p@10']:.3f}; {deltas}")
    for name, rows in report.get("adaptation", {}).items():
        for setting, row in rows.items():
            if isinstance(row, dict):
                interval = row.get("gain 95% interval")
                print(f"adapter {name}, {setting} ({row['queries']} queries): MRR {row['before']:.3f} -> "
                      f"{row['after']:.3f}; gain by seed {row['gain by seed']}"
                      + (f", 95% interval {interval}" if interval else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
