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
        self._onnx: dict = {}                 # role → ONNX Runtime network, while use_runtime("onnx")

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

    def use_runtime(self, runtime: str, prepared: dict | None = None) -> str:
        """Run the network on ``runtime`` (:mod:`qvi_app.encoders.onnx_runtime`): 'torch', 'onnx',
        'int8' (ONNX Runtime, quantised), or 'auto' (onnx for the CNN on a CPU when installed).
        Returns the runtime in use; ONNX Runtime that cannot be made or does not match torch
        leaves torch, with a warning."""
        from qvi_app.encoders import onnx_runtime

        if runtime not in onnx_runtime.RUNTIMES:
            raise ValueError(f"runtime must be one of {onnx_runtime.RUNTIMES}, not {runtime!r}")
        if runtime in ("onnx", "int8") and not onnx_runtime.available():
            raise EncoderError("the onnx runtime needs onnxruntime and onnx: .venv/bin/pip install -e '.[fast]'")
        self._onnx = {}
        wanted = runtime in ("onnx", "int8") or (runtime == "auto" and onnx_runtime.available())
        if not wanted or self.name != "cnn" or self.device.type != "cpu":
            return "torch"
        try:
            roles = ("query", "reference") if self.settings.towers == 2 else ("reference",)
            made = prepared if prepared and set(prepared) >= set(roles) else {}
            calibration = onnx_runtime.calibration_features(self) if runtime == "int8" and not made else None
            nets = {r: onnx_runtime.OnnxNetwork(self.model.network, r, self.settings.frontend.n_mels,
                                                torch.get_num_threads(), calibration, model_bytes=made.get(r))
                    for r in roles}
        except Exception as exc:                 # an exporter or runtime failure must not stop indexing
            import warnings

            warnings.warn(f"ONNX Runtime not used ({exc.__class__.__name__}: {exc}); running on torch")
            return "torch"
        self._onnx = {"query": nets.get("query", nets["reference"]), "reference": nets["reference"]}
        return "int8" if runtime == "int8" else "onnx"

    def runtime_models(self) -> dict:
        return {role: net.model_bytes for role, net in self._onnx.items()}

    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        features = self.model.frontend(wave).to(self.device)
        if self._onnx:
            return self._onnx[role](features)[0].float()
        return self.model.network(features, role)[0].float().cpu()
