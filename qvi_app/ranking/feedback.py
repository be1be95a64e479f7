"""Relevance feedback: a thumbs up or down on a result re-ranks the list at once.

Everything works on stored embeddings (the query's and the rated sounds'), so nothing is
recorded or embedded again. Rules (``FeedbackSettings.rule``):

* ``rocchio`` (Rocchio, 1971): q' = α·q + β·mean(liked) − γ·mean(disliked), each block
  renormalised. Measured here it often made things worse: moving toward one liked neighbour
  pulls the query away from the target as often as toward it.
* ``weighted`` (Kim & Pardo, 2019): as Rocchio, but each disliked sound is pushed away in
  proportion to how close it sits to the query (a near miss says more than a far one), and the
  liked ones pull with their closeness too.
* ``shortlist``: the query stays; only the current shortlist is re-scored,
  s'(r) = s(r) + β·max cos(r, liked) − γ·Σ w_n·cos(r, disliked_n) + β_c·[r shares a liked sound's
  category], w_n as in ``weighted``. Sounds outside the shortlist cannot jump in, so one rating
  cannot throw the list away. The category term reads a ▲ as "this kind of sound" too: on
  simulated imitations of the demo library it took one round from +0.014 to +0.112 MRR, and it
  changed nothing on real ones (docs/FEEDBACK.md).

Which rule and weights qvi uses was chosen on measurements (docs/FEEDBACK.md).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RULES = ("rocchio", "weighted", "shortlist")


@dataclass(frozen=True)
class FeedbackSettings:
    rule: str = "shortlist"
    alpha: float = 1.0
    beta: float = 0.5        # pull toward liked sounds
    gamma: float = 0.5       # push away from disliked sounds (docs/FEEDBACK.md: .5 over .3, within noise)
    shortlist: int = 100     # ``shortlist``: how many of the first ranking are re-scored
    category_beta: float = 1.0   # ``shortlist``: lift of a liked sound's category (docs/FEEDBACK.md: 0.25-2)

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"feedback rule must be one of {RULES}, not {self.rule!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _blocks(dim: int, blocks) -> list[tuple[int, int]]:
    return [(a, b) for _, a, b in blocks] if blocks else [(0, dim)]


def _unit_blocks(v: np.ndarray, blocks) -> np.ndarray:
    v = np.asarray(v, np.float32).copy()
    for a, b in _blocks(len(v), blocks):
        n = np.linalg.norm(v[a:b])
        if n > 0:
            v[a:b] /= n
    return v


def _closeness(query: np.ndarray, others: np.ndarray, blocks) -> np.ndarray:
    """Mean over blocks of each row's cosine with the query, mapped to a weight in [0, 1]."""
    spans = _blocks(len(query), blocks)
    cos = np.mean([others[:, a:b] @ query[a:b] for a, b in spans], axis=0)
    return np.clip((cos + 1) / 2, 0, 1)


def moved_query(query: np.ndarray, liked: np.ndarray, disliked: np.ndarray, s: FeedbackSettings,
                blocks=None) -> np.ndarray:
    """``rocchio`` and ``weighted``: the query vector moved by the ratings (blocks renormalised).
    ``liked``/``disliked``: (n, D) stored embeddings of the rated sounds (n may be 0)."""
    q = s.alpha * np.asarray(query, np.float32)
    if len(liked):
        w = np.ones(len(liked)) if s.rule == "rocchio" else _closeness(query, liked, blocks)
        q = q + s.beta * (w[:, None] * liked).sum(0) / max(w.sum(), 1e-9)
    if len(disliked):
        w = np.ones(len(disliked)) if s.rule == "rocchio" else _closeness(query, disliked, blocks)
        q = q - s.gamma * (w[:, None] * disliked).sum(0) / (len(disliked) if s.rule == "rocchio" else 1.0)
    return _unit_blocks(q, blocks)


def shortlist_scores(scores: np.ndarray, candidates: np.ndarray, query: np.ndarray, liked: np.ndarray,
                     disliked: np.ndarray, s: FeedbackSettings, blocks=None, categories: np.ndarray | None = None,
                     liked_categories: np.ndarray | None = None) -> np.ndarray:
    """``shortlist``: new scores of ``candidates`` (n, D), whose first-ranking scores are ``scores`` (n,).
    ``categories``: the candidates' categories (n,), ``liked_categories`` the liked sounds' (any
    comparable labels or codes); without them the category term is left out.

    Adjustments are in units of the first scores' spread over the shortlist, so the same β and γ
    mean the same whether scores are cosines or fused z-scores."""
    spans = _blocks(candidates.shape[1], blocks)

    def cos(rows: np.ndarray) -> np.ndarray:                  # (n, len(rows)) mean block cosine
        return np.mean([candidates[:, a:b] @ rows[:, a:b].T for a, b in spans], axis=0)

    spread = float(np.std(scores)) or 1.0
    out = np.asarray(scores, np.float64).copy()
    if len(liked):
        out += s.beta * spread * cos(liked).max(axis=1) / 0.5
    if len(disliked):
        w = _closeness(query, disliked, blocks)
        out -= s.gamma * spread * (cos(disliked) * w[None, :]).sum(axis=1) / 0.5
    if s.category_beta and categories is not None and liked_categories is not None and len(liked_categories):
        out += s.category_beta * spread * np.isin(categories, liked_categories) / 0.5
    return out
