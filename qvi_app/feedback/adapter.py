"""A model that learns its user's voice: a small query-side adapter trained on their ratings.

Only the query side changes (q' = normalize(q + U Vᵀ q) per block of the embedding, rank 16,
zero at the start), so every library index stays valid: nothing is re-embedded. Training data
are the user's rated queries (the audio the feedback store saved): each liked result is a
positive, disliked results and other library sounds are negatives (InfoNCE over them). Two
things keep a handful of ratings from wrecking it: simulated imitations of library sounds as
extra positive pairs, and a pull of the adapter toward zero (weight decay).

It is kept only if, on the user's own held-out rated queries, it ranks the liked results better
than the model without it (mean reciprocal rank of the liked result among the rated ones and
``negatives`` library sounds, by at least ``min_gain``); otherwise the user is told why.
The adapter file lives next to the feedback database, named after the model it adapts.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.nn import functional as F

from qvi_app.errors import QviError

FORMAT = "qvi-adapter"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class AdaptSettings:
    rank: int = 16
    epochs: int = 60
    lr: float = 3e-3
    weight_decay: float = 1e-2
    temperature: float = 0.07
    negatives: int = 64              # library sounds drawn as extra negatives per query
    simulated_pairs: int = 64        # simulated imitations of library sounds (the regulariser)
    held_out: float = 0.25           # share of rated queries kept for the keep-or-refuse test
    min_gain: float = 0.02           # held-out MRR gain needed to keep the adapter
    min_queries: int = 8             # fewer rated queries than this: nothing to learn from
    seed: int = 0


class QueryAdapter(torch.nn.Module):
    """q → normalize(q + U Vᵀ q), block by block; U starts at zero (the identity)."""

    def __init__(self, blocks: list[tuple[str, int, int]], rank: int):
        super().__init__()
        self.blocks = [tuple(b) for b in blocks]
        self.down = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(b - a, rank) / np.sqrt(b - a))
                                            for _, a, b in self.blocks])
        self.up = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(rank, b - a)) for _, a, b in self.blocks])

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        parts = []
        for (_, a, b), down, up in zip(self.blocks, self.down, self.up):
            x = q[..., a:b]
            parts.append(F.normalize(x + (x @ down) @ up, dim=-1))
        return torch.cat(parts, dim=-1)

    def apply(self, q: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self(torch.from_numpy(np.asarray(q, np.float32))).numpy()


@dataclass
class RatedQuery:
    vector: np.ndarray                # the query's embedding
    liked: list[int]                  # index rows
    disliked: list[int]


@dataclass
class AdaptReport:
    kept: bool
    reason: str
    queries: int
    held_out: int
    mrr_before: float
    mrr_after: float
    seconds: float
    path: Path | None = None
    details: dict = field(default_factory=dict)

    def summary(self) -> str:
        verdict = "kept" if self.kept else "not kept"
        return (f"adapter {verdict}: on {self.held_out} held-out rated queries the liked sounds ranked with MRR "
                f"{self.mrr_before:.3f} before, {self.mrr_after:.3f} after ({self.reason}); "
                f"{self.queries} rated queries, {self.seconds:.0f} s")


def adapter_path(feedback_db: Path, model_id: str) -> Path:
    tag = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    return Path(feedback_db).parent / f"adapter-{tag}.pt"


def _mrr(adapter: QueryAdapter | None, data: list[RatedQuery], emb: np.ndarray, negatives: np.ndarray) -> float:
    """Mean reciprocal rank of each liked row among the query's rated rows and ``negatives``."""
    out = []
    for rq in data:
        q = rq.vector if adapter is None else adapter.apply(rq.vector)
        cands = np.unique(np.concatenate([rq.liked, rq.disliked, negatives])).astype(int)
        scores = emb[cands] @ q
        for row in rq.liked:
            own = scores[np.flatnonzero(cands == row)[0]]
            out.append(1.0 / (1 + int((scores > own).sum())))
    return float(np.mean(out)) if out else 0.0


def train_adapter(rated: list[RatedQuery], embeddings: np.ndarray, blocks, settings: AdaptSettings = AdaptSettings(),
                  simulated: list[tuple[np.ndarray, int]] | None = None,
                  progress: Callable[[float], None] | None = None) -> tuple[QueryAdapter | None, AdaptReport]:
    """Train on ``rated`` (queries with liked/disliked index rows), test on a held-out share.

    ``embeddings``: the index's (N, D) reference embeddings; ``simulated``: (query vector, row)
    pairs of simulated imitations of library sounds. Returns the adapter (None when refused)."""
    t0 = time.perf_counter()
    usable = [r for r in rated if r.liked]
    if len(usable) < settings.min_queries:
        return None, AdaptReport(False, f"only {len(usable)} rated queries with a liked result; rate at least "
                                 f"{settings.min_queries} queries (a thumbs up on the right sound)", len(usable), 0,
                                 0.0, 0.0, time.perf_counter() - t0)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    order = rng.permutation(len(usable))
    n_test = max(2, int(round(settings.held_out * len(usable))))
    test, train = [usable[i] for i in order[:n_test]], [usable[i] for i in order[n_test:]]
    emb = np.asarray(embeddings, np.float32)
    held_negatives = rng.choice(len(emb), size=min(settings.negatives, len(emb)), replace=False)
    before = _mrr(None, test, emb, held_negatives)

    blocks = blocks or [("all", 0, emb.shape[1])]
    adapter = QueryAdapter(blocks, settings.rank)
    opt = torch.optim.AdamW(adapter.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    pairs = [(rq.vector, row, rq.disliked) for rq in train for row in rq.liked]
    pairs += [(vec, row, []) for vec, row in (simulated or [])]
    E = torch.from_numpy(emb)
    for epoch in range(settings.epochs):
        for i in rng.permutation(len(pairs)):
            q, pos, neg = pairs[i]
            extra = rng.choice(len(emb), size=min(settings.negatives, len(emb)), replace=False)
            cands = np.concatenate([[pos], neg, extra[extra != pos]]).astype(int)
            logits = E[cands] @ adapter(torch.from_numpy(np.asarray(q, np.float32))) / settings.temperature
            loss = F.cross_entropy(logits[None], torch.zeros(1, dtype=torch.long))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress((epoch + 1) / settings.epochs)
    after = _mrr(adapter, test, emb, held_negatives)
    gain = after - before
    kept = gain >= settings.min_gain
    reason = (f"better by {gain:+.3f}" if kept else
              f"it did not help enough ({gain:+.3f}; {settings.min_gain:+.2f} needed): rate more queries, "
              "or keep the model as it is")
    return (adapter if kept else None), AdaptReport(kept, reason, len(usable), len(test), before, after,
                                                    time.perf_counter() - t0)


def save_adapter(path: Path, adapter: QueryAdapter, model_id: str, report: AdaptReport,
                 settings: AdaptSettings) -> Path:
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
               "blocks": json.dumps(adapter.blocks), "rank": settings.rank, "created": time.time(),
               "report": json.dumps({k: v for k, v in asdict(report).items() if k not in ("path", "details")}),
               "state_dict": {k: v.detach().clone() for k, v in adapter.state_dict().items()}}
    tmp = path.with_name(path.name + ".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_adapter(path: Path, model_id: str) -> tuple[QueryAdapter, dict]:
    """The adapter at ``path`` for ``model_id`` (read without running code); QviError otherwise."""
    try:
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # an unpickling refusal, a truncated file, not a torch file at all
            raise ValueError(f"not a readable adapter: {exc.__class__.__name__}") from None
        if not isinstance(payload, dict) or payload.get("format") != FORMAT or payload.get("format_version") != FORMAT_VERSION:
            raise ValueError("not a qvi adapter")
        if payload["model_id"] != model_id:
            raise ValueError(f"made for model {payload['model_id']}, not {model_id}")
        adapter = QueryAdapter([tuple(b) for b in json.loads(payload["blocks"])], int(payload["rank"]))
        adapter.load_state_dict(payload["state_dict"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError) as exc:
        raise QviError(f"{path}: the adapter cannot be used ({str(exc).splitlines()[0][:200]}); delete it or learn "
                       "again") from None
    return adapter.eval(), json.loads(payload["report"])
