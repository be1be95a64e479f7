"""A model's query bank: embeddings of simulated imitations of many sounds, carried in its checkpoint.

The bank is what the hubness correction ``hub_bank="queries"`` (:mod:`qvi_app.ranking.score`)
measures each library sound against: a sound that sits close to imitations of *many other*
sounds is a hub and is pushed down by ``hub_weight`` times its mean cosine to its ``hub_k``
nearest bank imitations, computed once at indexing. The bank's sounds must not be the library's
own (a sound would then be penalised for being close to imitations of itself): the bundled
model's bank is the training corpus, which excludes the demo library (docs/TRAINING.md).

Measured on real voices (../shared/real-imitations-dev, docs/TRAINING.md row 22): a bank of
4,177 "follow"-strategy imitations of the training corpus, k 10, weight 0.5, took hubness among
the demo library from 31% to 21% of gen-1 queries (gen-2 38% to 22%) with item MRR within
noise; a bank of the library's own sounds (``hub_bank="library"``, rows 3 and 12) did not move
hubness at all.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from qvi_app.audio import isolate_sound, load_audio
from qvi_app.data.datasets import open_datasets
from qvi_app.data.simulate import SimulatorSettings, imitation_seed, simulate_imitation
from qvi_app.encoders.checkpoint import load_checkpoint, save_checkpoint
from qvi_app.errors import QviError
from qvi_app.ranking import RankingSettings

_CHECKPOINT_KEYS = ("format", "format_version", "encoder", "version", "settings", "state_dict", "digest")


def simulated_queries(encoder, data_roots, *, strategy: str | None = "follow", per_reference: int = 1,
                      seed: int = 0, progress: bool = True) -> tuple[np.ndarray, int]:
    """Query embeddings (M, dim) of ``per_reference`` simulated imitations of every sound of
    ``data_roots``, prepared as a search prepares a recording; and how many sounds were unusable."""
    from qvi_app.app import prepare_query

    sim = SimulatorSettings()
    refs = open_datasets(data_roots).references
    out, bad = [], 0
    for ref in tqdm(refs, desc="query bank", unit="sound", disable=not progress):
        try:
            wave, sr = load_audio(ref.path)
            wave = isolate_sound(wave, sr)
            for k in range(per_reference):
                imitation = simulate_imitation(wave, sr, imitation_seed(ref.id, k, "bank", seed), sim, strategy)
                out.append(encoder.embed(prepare_query(imitation, sim.sample_rate), sim.sample_rate, role="query"))
        except (QviError, ValueError):     # unreadable, silent after trimming, too short
            bad += 1
    if not out:
        raise QviError(f"no usable sounds in {', '.join(map(str, data_roots))} for a query bank")
    return np.stack(out), bad


def add_query_bank(checkpoint, data_roots, out=None, *, strategy: str | None = "follow", per_reference: int = 1,
                   hub_k: int = 10, hub_weight: float = 0.5, seed: int = 0, progress: bool = True) -> dict:
    """Write ``checkpoint`` (to ``out``, default in place) with a query bank of simulated imitations of
    ``data_roots`` and a ranking that corrects hubness against it. Returns what was written."""
    from qvi_app.encoders import load_encoder

    payload = load_checkpoint(checkpoint)
    encoder = load_encoder(payload["encoder"], checkpoint)
    bank, bad = simulated_queries(encoder, data_roots, strategy=strategy, per_reference=per_reference,
                                  seed=seed, progress=progress)
    ranking = RankingSettings(encoders=(payload["encoder"],), hub_bank="queries", hub_k=hub_k, hub_weight=hub_weight)
    info = {"sources": [str(r) for r in data_roots], "imitations": int(len(bank)), "unusable_sounds": bad,
            "strategy": strategy or "mix", "per_reference": per_reference, "seed": seed}
    extra = {k: v for k, v in payload.items() if k not in _CHECKPOINT_KEYS}
    extra.update(query_bank=torch.from_numpy(bank).half(), query_bank_info=info, ranking=ranking.to_dict())
    save_checkpoint(out or checkpoint, encoder=payload["encoder"], version=payload["version"],
                    settings=payload["settings"], state_dict=payload["state_dict"], **extra)
    return {"ranking": ranking.describe(), **info}
