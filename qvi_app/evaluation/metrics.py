"""Query-by-vocal-imitation metrics, computed as the field does (see ../shared/RESEARCH.md).

``scores`` is (Q, C): the similarity of each query (imitation) to each candidate reference.
Ranks are 1-based and pessimistic on ties (a tie with the target counts against it).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

KS = (1, 5, 10)


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


def random_mrr(n_candidates: int) -> float:
    """Expected MRR of a random ranking of ``n_candidates`` with one relevant item."""
    return float(np.mean(1.0 / np.arange(1, n_candidates + 1)))


def retrieval_report(scores: np.ndarray, targets, query_classes, candidate_classes) -> dict:
    """Item-wise and class-wise metrics, NDCG, and a per-category table."""
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
        "item": summarise(item), "class": summarise(cls), "ndcg": float(gains.mean()),
        "macro_mrr": float(np.mean([v["mrr"] for v in categories.values()])),
        "categories": categories,
    }
