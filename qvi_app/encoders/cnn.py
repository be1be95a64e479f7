"""The ``cnn`` encoder: log-mel front end + SfxCNN, both rebuilt from one checkpoint."""

from __future__ import annotations

import torch

from qvi_app.encoders.base import Encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.encoders.cnn_model import SfxCNN
from qvi_app.errors import EncoderError
from qvi_app.features.logmel import LogMelFrontEnd, LogMelSettings


class CnnEncoder(Encoder):
    name = "cnn"

    def __init__(self, checkpoint_path):
        ckpt = load_checkpoint(checkpoint_path, expect_encoder=self.name)
        self.checkpoint_path = checkpoint_path
        self.version = ckpt["version"]
        self.metadata = {k: v for k, v in ckpt.items() if k != "state_dict"}
        self._digest = ckpt["digest"]
        self.settings = LogMelSettings(**ckpt["frontend"])
        self.frontend = LogMelFrontEnd(self.settings).eval()
        self.model = SfxCNN(**ckpt["arch"]).eval()
        try:
            self.model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as exc:
            raise EncoderError(f"{checkpoint_path}: weights do not fit the architecture ({exc})") from None
        self.sample_rate = self.settings.sample_rate
        self.dim = self.model.dim

    @property
    def digest(self) -> str:
        return self._digest

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform (N,) → log-mel (1, 1, T, F)."""
        return self.frontend(wave)

    def embed_tensor(self, wave: torch.Tensor) -> torch.Tensor:
        return self.model(self.frontend(wave))[0]
