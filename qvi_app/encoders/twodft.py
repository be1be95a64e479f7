"""The ``2dft`` encoder: CQT + 2D Fourier magnitude, no learning (the seed's baseline)."""

from __future__ import annotations

import hashlib
import json

import torch

from qvi_app.encoders.base import Encoder
from qvi_app.features.cqt import CQT
from qvi_app.features.twodft import TwoDFTSettings, twodft_features


class TwoDFTEncoder(Encoder):
    name = "2dft"
    version = "1"

    def __init__(self, settings: TwoDFTSettings = TwoDFTSettings()):
        self.settings = settings
        self.cqt = CQT(settings.cqt)
        self.sample_rate = settings.cqt.sample_rate
        self.dim = settings.dim

    @property
    def digest(self) -> str:
        blob = json.dumps(self.settings.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:10]

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        feats = twodft_features(wave, self.cqt, self.settings).flatten()
        # Centre the vector so cosine similarity compares shapes (a Pearson correlation),
        # not the positive offset every magnitude shares.
        return feats - feats.mean()
