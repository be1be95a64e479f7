"""A model that learns its user's voice: a small query-side adapter trained on their ratings.

Only the query side changes (q' = normalize(q + U Vᵀ q) per block of the embedding, rank 16,
zero at the start; four such adapters averaged), so every library index stays valid: nothing is
re-embedded. Training data are the user's rated queries (the audio the feedback store saved):
each liked result is a positive, disliked results and other library sounds are negatives
(InfoNCE over them). Three things keep a handful of ratings from wrecking it: simulated
imitations of library sounds as extra positive pairs, anchors (simulated imitations the adapter
must leave where they are: the model's query bank), and a pull of the adapter toward zero
(weight decay).

It is kept only if, on the user's own rated queries, each tested by the member adapter that was
trained without it (cross-fitting), it ranks the liked results better than the model without it
(mean reciprocal rank of the liked result among the rated ones and ``negatives`` library sounds,
by at least ``min_gain``); otherwise the user is told why.
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

from qvi_app.errors import QviError, counted

FORMAT = "qvi-adapter"
FORMAT_VERSION = 2                   # 2: several averaged members (1: one adapter, still read)


@dataclass(frozen=True)
class AdaptSettings:
    rank: int = 16
    #: Adapters trained, each with a different quarter of the rated queries held out; the kept
    #: adapter is their average. On real imitations (leave one reference out, 3 seeds) one adapter
    #: gave gen-1 MRR -0.007 (from -0.029 to +0.017 by seed), four averaged +0.011 (docs/FEEDBACK.md).
    members: int = 4
    epochs: int = 60
    batch: int = 16
    lr: float = 1e-2
    weight_decay: float = 1e-2
    temperature: float = 0.07
    negatives: int = 64              # library sounds drawn as extra negatives per query
    simulated_pairs: int = 64        # simulated imitations of library sounds (the regulariser)
    #: Weight of the anchor term: the adapter is also trained to leave simulated imitations (the
    #: model's query bank) where they are, 1 − cos(adapted, original); it can then only move what
    #: real imitations have and simulated ones lack. Leave one reference out on real imitations
    #: (3 seeds, docs/FEEDBACK.md): weight 0 gave gen-1/gen-2 MRR +0.011/+0.035 and cost the
    #: simulated benchmark 0.041; weight 1 +0.023/+0.057 (−0.024); 3 +0.066/+0.062 (−0.018);
    #: 10 +0.089/+0.068 (−0.001).
    anchor_weight: float = 10.0
    anchors_per_step: int = 64
    min_gain: float = 0.02           # cross-validated MRR gain needed to keep the adapter
    min_queries: int = 8             # fewer rated queries than this: nothing to learn from
    seed: int = 0


class QueryAdapter(torch.nn.Module):
    """q → normalize(mean over members of normalize(q + U Vᵀ q)), block by block.

    Each member's U starts at zero, so an untrained adapter is the identity."""

    def __init__(self, blocks: list[tuple[str, int, int]], rank: int, members: int = 1):
        super().__init__()
        self.blocks = [tuple(b) for b in blocks]
        self.down = torch.nn.ParameterList([torch.nn.Parameter(torch.randn(members, b - a, rank) / np.sqrt(b - a))
                                            for _, a, b in self.blocks])
        self.up = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(members, rank, b - a))
                                          for _, a, b in self.blocks])

    @classmethod
    def average_of(cls, members: list["QueryAdapter"]) -> "QueryAdapter":
        """One adapter whose output is the average of ``members``' outputs (same blocks and rank)."""
        out = cls(members[0].blocks, members[0].down[0].shape[-1], len(members))
        with torch.no_grad():
            for i in range(len(out.blocks)):
                out.down[i].copy_(torch.cat([m.down[i] for m in members]))
                out.up[i].copy_(torch.cat([m.up[i] for m in members]))
        return out

    def forward(self, q: torch.Tensor) -> torch.Tensor:
        parts = []
        for (_, a, b), down, up in zip(self.blocks, self.down, self.up):
            x = q[..., a:b]
            moved = x.unsqueeze(-2) + torch.einsum("...d,mdr,mre->...me", x, down, up)
            parts.append(F.normalize(F.normalize(moved, dim=-1).mean(-2), dim=-1))
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
        if not self.held_out:                   # refused before any training: the reason is all there is
            return self.reason
        verdict = "kept" if self.kept else "not kept"
        return (f"adapter {verdict}: on {self.held_out} held-out rated queries (each tested by an adapter trained "
                f"without it) the liked sounds ranked with MRR "
                f"{self.mrr_before:.3f} before, {self.mrr_after:.3f} after ({self.reason}); "
                f"{self.queries} rated queries, {self.seconds:.0f} s")


def adapter_path(feedback_db: Path, model_id: str) -> Path:
    tag = hashlib.sha256(model_id.encode()).hexdigest()[:12]
    return Path(feedback_db).parent / f"adapter-{tag}.pt"


def query_bank_anchors(encoder, blocks) -> np.ndarray | None:
    """The model's query bank (simulated imitations of its training sounds, carried in the
    checkpoint) as whole query vectors, when every block of the embedding has a bank of the same
    length; otherwise None (train_adapter then anchors on its simulated pairs)."""
    banks = encoder.query_banks()
    blocks = blocks or [("all", 0, encoder.dim)]
    parts = [banks.get(name) for name, _, _ in blocks]
    if any(p is None for p in parts) or len({len(p) for p in parts}) != 1:
        return None
    return np.concatenate([np.asarray(p, np.float32) for p in parts], axis=1)


def _reciprocal_ranks(adapter: QueryAdapter | None, data: list[RatedQuery], emb: np.ndarray,
                      negatives: np.ndarray) -> list[float]:
    """Reciprocal rank of each liked row among the query's rated rows and ``negatives``."""
    out = []
    for rq in data:
        q = rq.vector if adapter is None else adapter.apply(rq.vector)
        cands = np.unique(np.concatenate([rq.liked, rq.disliked, negatives])).astype(int)
        scores = np.asarray(emb[cands], np.float32) @ q
        for row in rq.liked:
            own = scores[np.flatnonzero(cands == row)[0]]
            out.append(1.0 / (1 + int((scores > own).sum())))
    return out


def _train_member(pairs: list[tuple[np.ndarray, int, list[int]]], emb: np.ndarray, blocks, settings: AdaptSettings,
                  rng: np.random.Generator, progress: Callable[[float], None] | None,
                  anchors: torch.Tensor | None = None) -> QueryAdapter:
    """One adapter, InfoNCE in minibatches: each pair's positive against its disliked rows and
    ``settings.negatives`` library rows drawn anew each step (a draw equal to the positive or a
    padding slot is masked out); plus, with ``anchors``, the anchor term (AdaptSettings)."""
    adapter = QueryAdapter(blocks, settings.rank)
    opt = torch.optim.AdamW(adapter.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    queries = torch.from_numpy(np.stack([p[0] for p in pairs]).astype(np.float32))
    width = max([len(p[2]) for p in pairs] + [0])
    fixed = np.full((len(pairs), 1 + width), -1, np.int64)    # the positive, then the disliked rows
    for i, (_, pos, neg) in enumerate(pairs):
        fixed[i, 0] = pos
        fixed[i, 1:1 + len(neg)] = neg
    target = torch.zeros(settings.batch, dtype=torch.long)
    for epoch in range(settings.epochs):
        order = rng.permutation(len(pairs))
        for start in range(0, len(order), settings.batch):
            idx = order[start:start + settings.batch]
            drawn = rng.integers(len(emb), size=(len(idx), settings.negatives))
            cands = np.concatenate([fixed[idx], drawn], axis=1)
            masked = (cands < 0) | (cands == cands[:, :1])
            masked[:, 0] = False
            rows = torch.from_numpy(np.asarray(emb[np.maximum(cands, 0).ravel()], np.float32)).view(*cands.shape, -1)
            logits = torch.einsum("bkd,bd->bk", rows, adapter(queries[idx])) / settings.temperature
            logits = logits.masked_fill(torch.from_numpy(masked), float("-inf"))
            loss = F.cross_entropy(logits, target[:len(idx)])
            if anchors is not None and settings.anchor_weight > 0:
                a = anchors[torch.from_numpy(rng.integers(len(anchors), size=settings.anchors_per_step))]
                kept_cos = (adapter(a) * a).sum(-1) / len(blocks)
                loss = loss + settings.anchor_weight * (1 - kept_cos).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if progress:
            progress((epoch + 1) / settings.epochs)
    return adapter


def train_adapter(rated: list[RatedQuery], embeddings: np.ndarray, blocks, settings: AdaptSettings = AdaptSettings(),
                  simulated: list[tuple[np.ndarray, int]] | None = None,
                  progress: Callable[[float], None] | None = None,
                  anchors: np.ndarray | None = None) -> tuple[QueryAdapter | None, AdaptReport]:
    """Train on ``rated`` (queries with liked/disliked index rows) by cross-fitting: the rated
    queries are cut into ``settings.members`` parts, one adapter is trained without each part and
    tested on it, and the kept adapter averages them. Every rated query is thus tested once, by an
    adapter that never saw it: the keep-or-refuse figure is about queries not trained on. (With
    ``members`` 1, one adapter is trained and a quarter of the rated queries tests it.)

    ``embeddings``: the index's (N, D) reference embeddings; ``simulated``: (query vector, row)
    pairs of simulated imitations of library sounds, in every part's training; ``anchors``: (M, D)
    query embeddings of simulated imitations to leave in place (default: the simulated pairs'
    queries). Returns the adapter (None when refused) and the report."""
    t0 = time.perf_counter()
    usable = [r for r in rated if r.liked]
    if len(usable) < settings.min_queries:
        n = len(usable)
        return None, AdaptReport(False, f"too few ratings to learn from: {counted(n, 'query', 'queries')} "
                                 f"{'has' if n == 1 else 'have'} a liked result; rate at least {settings.min_queries} "
                                 "(a thumbs up on the right sound)", n, 0, 0.0, 0.0, time.perf_counter() - t0)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    emb = embeddings if embeddings.dtype == np.float32 else np.asarray(embeddings, np.float32)
    blocks = blocks or [("all", 0, emb.shape[1])]
    order = rng.permutation(len(usable))
    if settings.members > 1:
        parts = np.array_split(order, min(settings.members, len(usable)))
    else:                                   # one adapter: a quarter of the rated queries held out
        parts = [order[:max(2, len(usable) // 4)]]
    if anchors is None and simulated:
        anchors = np.stack([vec for vec, _ in simulated])
    anchor_rows = None if anchors is None or len(anchors) == 0 else torch.from_numpy(np.asarray(anchors, np.float32))
    held_negatives = rng.choice(len(emb), size=min(settings.negatives, len(emb)), replace=False)
    members, before, after = [], [], []
    for j, part in enumerate(parts):
        test = [usable[i] for i in part]
        train = [usable[i] for i in np.setdiff1d(np.arange(len(usable)), part)]
        pairs = [(rq.vector, row, rq.disliked) for rq in train for row in rq.liked]
        pairs += [(vec, row, []) for vec, row in (simulated or [])]
        step = None if progress is None else (lambda f, j=j: progress((j + f) / len(parts)))
        member = _train_member(pairs, emb, blocks, settings, rng, step, anchor_rows)
        before += _reciprocal_ranks(None, test, emb, held_negatives)
        after += _reciprocal_ranks(member, test, emb, held_negatives)
        members.append(member)
    mrr_before, mrr_after = float(np.mean(before)), float(np.mean(after))
    gain = mrr_after - mrr_before
    kept = gain >= settings.min_gain
    reason = (f"better by {gain:+.3f}" if kept else
              f"it did not help enough ({gain:+.3f}; {settings.min_gain:+.2f} needed): rate more queries, "
              "or keep the model as it is")
    adapter = QueryAdapter.average_of(members).eval() if kept else None
    return adapter, AdaptReport(kept, reason, len(usable), sum(map(len, parts)), mrr_before, mrr_after,
                                time.perf_counter() - t0)


def save_adapter(path: Path, adapter: QueryAdapter, model_id: str, report: AdaptReport) -> Path:
    path = Path(path)
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "model_id": model_id,
               "blocks": json.dumps(adapter.blocks), "rank": adapter.down[0].shape[-1],
               "members": adapter.down[0].shape[0], "created": time.time(),
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
        if (not isinstance(payload, dict) or payload.get("format") != FORMAT
                or payload.get("format_version") not in (1, FORMAT_VERSION)):
            raise ValueError("not a qvi adapter")
        if payload["model_id"] != model_id:
            raise ValueError(f"made for model {payload['model_id']}, not {model_id}")
        state = payload["state_dict"]
        if payload["format_version"] == 1:                 # one adapter: a single member
            state = {k: v.unsqueeze(0) for k, v in state.items()}
        adapter = QueryAdapter([tuple(b) for b in json.loads(payload["blocks"])], int(payload["rank"]),
                               int(payload.get("members", 1)))
        adapter.load_state_dict(state)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError) as exc:
        raise QviError(f"{path}: the adapter cannot be used ({str(exc).splitlines()[0][:200]}); delete it or learn "
                       "again") from None
    return adapter.eval(), json.loads(payload["report"])
