"""The ``qvi`` encoder: several encoders as one, ranked together (qvi's default).

Its embedding is the concatenation of each part's unit vector (a *block* per part: the learned
CNN, CQT+2DFT), so the index, the indexing workers and resuming treat it like any encoder.
How the blocks are ranked together (:class:`~qvi_app.ranking.RankingSettings`: fusion weights,
hubness correction) is part of its id, so an index built for another ranking is rebuilt.
The ranking comes from the learned model's checkpoint (``ranking``, written when the model
was chosen, see docs/TRAINING.md), else :data:`DEFAULT_RANKING`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import torch

from qvi_app.encoders.base import Encoder
from qvi_app.ranking import RankingSettings

#: For a checkpoint that carries no ranking: the learned CNN alone. The bundled model carries CSLS
#: against its query bank (``qvi bank``). Measured on real voices (item MRR on
#: ../shared/real-imitations-dev, gen-1/gen-2 against its 10 references | among the demo library
#: too; hubness = largest top-10 share, gen-1):
#:   cnn + CSLS against its query bank (k 10, .5)  .640 .522 | .163 .086   hubness .21  (bundled, 0.4)
#:   cnn                                           .660 .522 | .167 .085           .31  (bundled, 0.3)
#:   cnn + CSLS against the library (k 10)         .621 .536 | .154 .094           .31
#:   cnn .7 + 2DFT .3 + CSLS against the library   .632 .529 | .147 .069           .36  (until 0.3)
#:   cnn .7 + 2DFT .3                              .646 .544 | .105 .035           .40
#: Fusion with CQT+2DFT raised hubness and lowered the library figures; CSLS against the library
#: did not move hubness, against 4,177 imitations of other sounds it did (docs/TRAINING.md row 22).
#: Every ranking stays available (RankingSettings in a checkpoint, ``qvi evaluate --ranking``).
DEFAULT_RANKING = RankingSettings(encoders=("cnn",), weights=(1.0,))


class FusedEncoder(Encoder):
    name = "qvi"

    def __init__(self, parts: list[Encoder], ranking: RankingSettings):
        if [p.name for p in parts] != list(ranking.encoders):
            raise ValueError(f"parts {[p.name for p in parts]} do not match the ranking's {list(ranking.encoders)}")
        self.parts = parts
        self.ranking = ranking
        self.version = "+".join(f"{p.name}-{p.version}" for p in parts)
        self.dim = sum(p.dim for p in parts)
        self.sample_rate = parts[0].sample_rate
        learned = [p for p in parts if getattr(p, "checkpoint_path", None) is not None]
        self.checkpoint_path = learned[0].checkpoint_path if learned else None
        starts = np.cumsum([0] + [p.dim for p in parts])
        self.blocks = [(p.name, int(a), int(b)) for p, a, b in zip(parts, starts[:-1], starts[1:])]

    @property
    def digest(self) -> str:
        blob = json.dumps({"parts": [p.id for p in self.parts], "ranking": self.ranking.to_dict()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:10]

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        raise NotImplementedError("a fused encoder embeds each part at its own rate: use embed()")

    def embed(self, wave: np.ndarray, sr: int, role: str = "reference") -> np.ndarray:
        """Each part's unit vector, concatenated: (sum of the parts' dims,) float32."""
        return np.concatenate([p.embed(wave, sr, role) for p in self.parts])

    def use_runtime(self, runtime: str, prepared: dict | None = None) -> str:
        used = {p.use_runtime(runtime, (prepared or {}).get(p.name)) for p in self.parts}
        return next((r for r in ("int8", "onnx") if r in used), "torch")

    def runtime_models(self) -> dict:
        return {p.name: models for p in self.parts if (models := p.runtime_models())}

    def query_banks(self) -> dict[str, np.ndarray]:
        return {name: bank for p in self.parts for name, bank in p.query_banks().items()}

    def describe(self) -> dict:
        return {**super().describe(), "ranking": self.ranking.to_dict(),
                "blocks": [list(b) for b in self.blocks], "parts": [p.id for p in self.parts]}


def load_fused(checkpoint=None) -> FusedEncoder:
    """The learned model at ``checkpoint`` (default: the bundled one) with the ranking it carries."""
    from qvi_app.encoders import load_encoder
    from qvi_app.encoders.checkpoint import encoder_name_of
    from qvi_app.errors import EncoderError
    from qvi_app.paths import BUNDLED_CNN

    checkpoint = checkpoint if checkpoint is not None else BUNDLED_CNN
    learned_name = encoder_name_of(checkpoint)
    learned = load_encoder(learned_name, checkpoint)
    stored = learned.metadata.get("ranking")
    try:
        ranking = RankingSettings.from_dict(stored) if stored is not None else DEFAULT_RANKING
    except (ValueError, TypeError) as exc:
        raise EncoderError(f"{checkpoint}: bad ranking settings ({exc}); re-export the model") from None
    if learned_name not in ranking.encoders:
        raise EncoderError(f"{checkpoint}: its ranking does not use its own {learned_name} model")
    if ranking.hub_bank == "queries" and learned_name not in learned.query_banks():
        raise EncoderError(f"{checkpoint}: its ranking corrects hubness against a query bank it does not carry; "
                           "re-export the model")
    parts = [learned if name == learned_name else load_encoder(name) for name in ranking.encoders]
    return FusedEncoder(parts, ranking)
