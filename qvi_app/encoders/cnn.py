"""The ``cnn`` encoder: log-mel front end + CNN, both rebuilt from one checkpoint.

A checkpoint holds either a plain backbone (``arch`` without ``towers``: the zero-shot aisfx
model) or a fine-tuned dual encoder (backbone + projection head, one or two towers).
"""

from __future__ import annotations

import torch

from qvi_app.encoders.base import Encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.encoders.cnn_model import SfxCNN
from qvi_app.encoders.dual_model import DualEncoder
from qvi_app.errors import EncoderError
from qvi_app.features.logmel import LogMelFrontEnd, LogMelSettings


def build_model(arch: dict, state_dict: dict, source="checkpoint") -> torch.nn.Module:
    """The network a checkpoint describes, with its weights, in eval mode."""
    model = DualEncoder(**arch) if "towers" in arch else SfxCNN(**arch)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as exc:
        raise EncoderError(f"{source}: weights do not fit the architecture ({exc})") from None
    return model.eval()


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
        self.model = build_model(ckpt["arch"], ckpt["state_dict"], checkpoint_path)
        self._dual = isinstance(self.model, DualEncoder)
        self.sample_rate = self.settings.sample_rate
        self.dim = self.model.dim

    @property
    def digest(self) -> str:
        return self._digest

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform (N,) → log-mel (1, 1, T, F)."""
        return self.frontend(wave)

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        logmel = self.frontend(wave)
        return (self.model(logmel, role) if self._dual else self.model(logmel))[0]
