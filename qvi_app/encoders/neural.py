"""Learned encoders (``cnn``, ``passt``): a :class:`~qvi_app.encoders.model.Model` behind the
:class:`Encoder` interface, built from a qvi checkpoint or from a backbone's published weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from qvi_app.encoders.base import Encoder
from qvi_app.encoders.checkpoint import file_digest, is_qvi_checkpoint
from qvi_app.encoders.model import Model, ModelSettings, backbone, build_model, load_model
from qvi_app.errors import EncoderError


class NeuralEncoder(Encoder):
    """``name`` is the backbone ('cnn', 'passt'); ``version`` and ``digest`` name the weights."""

    def __init__(self, model: Model, version: str, digest: str, checkpoint_path: Path | None = None,
                 metadata: dict | None = None):
        self.model = model
        self.settings: ModelSettings = model.settings
        self.name = model.settings.backbone
        self.version = version
        self._digest = digest
        self.checkpoint_path = checkpoint_path
        self.metadata = metadata or {}
        self.sample_rate = model.sample_rate
        self.dim = model.dim
        self.device = torch.device("cuda" if backbone(self.name).prefers_gpu and torch.cuda.is_available() else "cpu")
        self.model.network.to(self.device)

    @classmethod
    def from_file(cls, name: str, path) -> "NeuralEncoder":
        """A qvi checkpoint of backbone ``name``, or weights published for that backbone."""
        path, row = Path(path), backbone(name)
        if not path.is_file():
            raise EncoderError(f"{row.title} weights not found at {path}" + (f"; {row.weights_hint}" if row.weights_hint else ""))
        if is_qvi_checkpoint(path) or row.load_foreign is None:      # load_model says what is wrong
            model, meta = load_model(path, expect_backbone=name)
            return cls(model, meta["version"], meta["digest"], path, meta)
        model = build_model(ModelSettings.default(name))
        row.load_foreign(model.network.backbone, path)
        return cls(model, path.stem, file_digest(path), path)

    @classmethod
    def untrained(cls, name: str) -> "NeuralEncoder":
        """Random weights: architecture tests and smoke runs."""
        torch.manual_seed(0)
        return cls(build_model(ModelSettings.default(name)), "untrained", "random")

    @property
    def digest(self) -> str:
        return self._digest

    def query_banks(self) -> dict[str, np.ndarray]:
        """The checkpoint's query bank (``query_bank``: (M, dim) float16, written by
        :func:`qvi_app.training.query_bank.add_query_bank`), if it has one."""
        bank = self.metadata.get("query_bank")
        if bank is None:
            return {}
        if not isinstance(bank, torch.Tensor) or bank.ndim != 2 or bank.shape[1] != self.dim or len(bank) == 0:
            raise EncoderError(f"{self.checkpoint_path}: damaged query bank (not an (M, {self.dim}) matrix); "
                               "re-export the model")
        return {self.name: bank.float().numpy()}

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """Waveform (N,) at ``sample_rate`` → front-end features (1, 1, T, F)."""
        return self.model.frontend(wave)

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        features = self.model.frontend(wave).to(self.device)
        return self.model.network(features, role)[0].float().cpu()
