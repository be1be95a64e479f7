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


def leave_one_reference_out(enc, c: Candidates, lib_c: Candidates, lib_audio, real_queries, sim_queries) -> dict:
    """The adapter protocol (module docstring); MRR before/after per group and on the simulated set."""
    from qvi_app.feedback.adapter import AdaptSettings, RatedQuery, train_adapter

    n_refs = len(c.cats) - len(lib_c.cats)
    rng = np.random.default_rng(0)
    settings = AdaptSettings(min_gain=-1.0)          # keep every adapter, to measure it; the app refuses below +0.02
    simulated = []
    for row in rng.choice(len(lib_audio), size=settings.simulated_pairs, replace=False):
        w, sr = lib_audio[row]
        imi = simulate_imitation(isolate_sound(w, sr), sr, int(row))
        simulated.append((enc.embed(prepare_query(imi, 16000), 16000, role="query"), n_refs + int(row)))
    folds, rows = [], {"before": {}, "after": {}}
    sim_before = float(np.mean([_rr(lib_c, q, i) for i, q in enumerate(sim_queries)]))
    sim_after = []
    for held in range(n_refs):
        rated = []
        for q, t, _ in real_queries:
            if t == held:
                continue
            order = np.argsort(-c.scores(q), kind="stable")
            disliked = [int(i) for i in order if c.cats[i] != c.cats[t]][:2]
            rated.append(RatedQuery(q, [t], disliked))
        adapter, report = train_adapter(rated, c.emb, c.blocks, settings, simulated)
        kept_by_app = report.mrr_after - report.mrr_before >= AdaptSettings().min_gain
        for q, t, group in real_queries:
            if t == held:
                rows["before"].setdefault(group, []).append(_rr(c, q, t))
                rows["after"].setdefault(group, []).append(_rr(c, adapter.apply(q), t))
        sim_after.append(float(np.mean([_rr(lib_c, adapter.apply(q), i) for i, q in enumerate(sim_queries)])))
        folds.append({"held_out": held, "kept_by_app": bool(kept_by_app), "own_held_out_gain": report.mrr_after - report.mrr_before})
        print(f"  fold {held}: app would {'keep' if kept_by_app else 'refuse'} it "
              f"({report.mrr_after - report.mrr_before:+.3f} on its own held-out ratings)", flush=True)
    out = {g: {"queries": len(v), "before": float(np.mean(v)), "after": float(np.mean(rows["after"][g]))}
           for g, v in sorted(rows["before"].items())}
    out["demo library, simulated"] = {"queries": len(sim_queries), "before": sim_before, "after": float(np.mean(sim_after))}
    out["folds"] = folds
    return out


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
    for setting, row in report.get("adaptation", {}).items():
        if setting != "folds":
            print(f"adapter, {setting} ({row['queries']} queries): MRR {row['before']:.3f} -> {row['after']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
