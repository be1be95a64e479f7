"""Query-by-vocal-imitation metrics, computed as the field does (see ../shared/RESEARCH.md).

``scores`` is (Q, C): the similarity of each query (imitation) to each candidate reference.
Ranks are 1-based and pessimistic on ties (a tie with the target counts against it).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

KS = (1, 5, 10)
#: Bootstrap resamples for the intervals below. On the 42 real-dev gen-1 queries of 10 sounds
#: among the demo library (MRR 0.163, interval 0.071-0.245 resampling sounds), 2,000 resamples
#: put the ends within 0.01 of where 200,000 put them (standard deviation 0.002 over 30 seeds).
RESAMPLES = 2000


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Rank of each query's exact reference (``targets``: candidate column per query)."""
    scores = np.asarray(scores, np.float64)
    own = scores[np.arange(len(scores)), targets]
    others = scores.copy()
    others[np.arange(len(scores)), targets] = -np.inf
    return 1 + (others >= own[:, None]).sum(axis=1)


def class_ranks(scores: np.ndarray, query_classes, candidate_classes) -> np.ndarray:
    """Rank of the best-scored reference of the query's own category."""
    scores = np.asarray(scores, np.float64)
    relevant = np.asarray(query_classes)[:, None] == np.asarray(candidate_classes)[None, :]
    if not relevant.any(axis=1).all():
        raise ValueError("some query has no candidate of its category")
    best = np.where(relevant, scores, -np.inf).max(axis=1)
    return 1 + (np.where(relevant, -np.inf, scores) >= best[:, None]).sum(axis=1)


def ndcg(scores: np.ndarray, query_classes, candidate_classes) -> np.ndarray:
    """Per-query NDCG over the whole ranking, binary relevance = same category, log2 discount."""
    scores = np.asarray(scores, np.float64)
    relevant = (np.asarray(query_classes)[:, None] == np.asarray(candidate_classes)[None, :]).astype(float)
    order = np.argsort(-scores, axis=1, kind="stable")
    gains = np.take_along_axis(relevant, order, axis=1)
    discount = 1 / np.log2(np.arange(2, scores.shape[1] + 2))
    dcg = (gains * discount).sum(axis=1)
    ideal = np.array([discount[: int(n)].sum() for n in relevant.sum(axis=1)])
    return np.divide(dcg, ideal, out=np.zeros_like(dcg), where=ideal > 0)


def k_occurrence(scores: np.ndarray, k: int = 10) -> np.ndarray:
    """How many queries have each candidate among their ``k`` best (ties by column order), (C,)."""
    scores = np.asarray(scores, np.float64)
    k = min(k, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.bincount(top.ravel(), minlength=scores.shape[1])


def hubness(scores: np.ndarray, k: int = 10) -> dict:
    """The largest share of queries one candidate reaches in the top ``k``, and which candidate."""
    occ = k_occurrence(scores, k)
    worst = int(occ.argmax())
    return {"k": k, "max_share": float(occ[worst] / len(scores)), "candidate": worst}


def summarise(ranks: np.ndarray, ks=KS) -> dict:
    ranks = np.asarray(ranks)
    out = {"mrr": float(np.mean(1.0 / ranks))}
    out.update({f"top{k}": float(np.mean(ranks <= k)) for k in ks})
    return out


def _resampled_means(values: np.ndarray, clusters, seed: int) -> np.ndarray:
    """Mean of ``values`` over RESAMPLES bootstrap resamples. With ``clusters`` (one label per
    query: the imitated sound) whole clusters are drawn with replacement, all their queries with
    them, because imitations of one sound succeed or fail together; without, single queries."""
    rng = np.random.default_rng(seed)
    if clusters is None:
        return values[rng.integers(0, len(values), (RESAMPLES, len(values)))].mean(axis=1)
    _, label = np.unique(np.asarray(clusters), return_inverse=True)
    sums, counts = np.bincount(label, values), np.bincount(label).astype(np.float64)
    idx = rng.integers(0, len(sums), (RESAMPLES, len(sums)))
    return sums[idx].sum(axis=1) / counts[idx].sum(axis=1)


def mrr_interval(ranks, clusters=None, seed: int = 0) -> tuple[float, float]:
    """95% bootstrap (percentile) interval of the MRR of these query ranks: how far the figure
    could move on another set of sounds and imitations like these (``clusters``: see
    :func:`_resampled_means`). Seeded, so a report is reproducible."""
    rr = 1.0 / np.asarray(ranks, np.float64)
    if len(rr) == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(_resampled_means(rr, clusters, seed), [2.5, 97.5])
    return float(lo), float(hi)


def paired_difference(ranks_a, ranks_b, clusters=None, seed: int = 0) -> dict:
    """MRR of ``a`` minus MRR of ``b`` on the same queries, with its 95% bootstrap interval and the
    share of resamples in which ``a`` is strictly ahead. Pairing by query removes the spread that
    comes from some imitations being hard for every system, so this decides between two systems
    where two overlapping :func:`mrr_interval` s cannot."""
    a, b = np.asarray(ranks_a), np.asarray(ranks_b)
    if a.shape != b.shape:
        raise ValueError(f"compare ranks of the same queries ({len(a)} and {len(b)} given)")
    diff = 1.0 / a - 1.0 / b
    if len(diff) == 0:
        return {"mrr_diff": 0.0, "ci95": [0.0, 0.0], "share_better": 0.0}
    means = _resampled_means(diff, clusters, seed)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mrr_diff": float(diff.mean()), "ci95": [float(lo), float(hi)], "share_better": float(np.mean(means > 0))}


def random_mrr(n_candidates: int) -> float:
    """Expected MRR of a random ranking of ``n_candidates`` with one relevant item."""
    return float(np.mean(1.0 / np.arange(1, n_candidates + 1)))


def retrieval_report(scores: np.ndarray, targets, query_classes, candidate_classes) -> dict:
    """Item-wise and class-wise metrics, NDCG, and a per-category table; the item MRR's 95%
    interval (resampling the imitated sounds) and each query's item rank (to compare systems
    query by query)."""
    targets = np.asarray(targets)
    item = target_ranks(scores, targets)
    cls = class_ranks(scores, query_classes, candidate_classes)
    gains = ndcg(scores, query_classes, candidate_classes)
    per_cat = defaultdict(list)
    for r, c, g in zip(item, query_classes, gains):
        per_cat[c].append((r, g))
    categories = {c: {"queries": len(v), **summarise([r for r, _ in v]), "ndcg": float(np.mean([g for _, g in v]))}
                  for c, v in sorted(per_cat.items())}
    return {
        "queries": int(len(targets)), "candidates": int(np.asarray(scores).shape[1]),
        "item": {**summarise(item), "mrr_ci95": list(mrr_interval(item, targets))}, "item_ranks": item.tolist(),
        "class": summarise(cls), "ndcg": float(gains.mean()),
        "macro_mrr": float(np.mean([v["mrr"] for v in categories.values()])),
        "categories": categories,
    }
