"""NT-Xent (normalised temperature-scaled cross-entropy) over in-batch negatives."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def nt_xent(queries: torch.Tensor, references: torch.Tensor, temperature: torch.Tensor | float) -> torch.Tensor:
    """Symmetric NT-Xent for B matching (imitation, reference) pairs, both (B, D).

    Row i of each is a positive pair; the other B-1 rows are its negatives. The loss is the
    mean of the imitation→reference and reference→imitation cross-entropies over cosine
    similarities divided by ``temperature``.
    """
    q = F.normalize(queries, dim=-1)
    r = F.normalize(references, dim=-1)
    logits = q @ r.T / temperature
    target = torch.arange(len(q), device=q.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
