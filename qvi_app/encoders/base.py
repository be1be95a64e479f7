"""The one small interface every encoder implements."""

from __future__ import annotations

import abc

import numpy as np
import torch

from qvi_app.audio import resample

#: The longest stretch of a sound an encoder analyses, by role (s). A query is an imitation of
#: a few seconds; a library sound is described by its first minute. Bounds an encoder's memory:
#: a 599 s query of noise took 45 s and 3.3 GB through the CNN.
MAX_ANALYSED_S = {"query": 30.0, "reference": 60.0}


class Encoder(abc.ABC):
    """Maps a waveform to a unit-length embedding; imitations and references share it.

    ``id`` names the exact model (name, version and a digest of weights and settings):
    an index built with one id is refused by an encoder with another.
    """

    name: str
    version: str
    sample_rate: int
    dim: int

    @property
    def id(self) -> str:
        return f"{self.name}/{self.version}/{self.digest}"

    @property
    @abc.abstractmethod
    def digest(self) -> str:
        """Short hash of weights + preprocessing settings."""

    @abc.abstractmethod
    def embed_tensor(self, wave: torch.Tensor, role: str = "reference") -> torch.Tensor:
        """Waveform (N,) at ``self.sample_rate`` → embedding (dim,), not yet normalised.

        ``role`` is 'query' for an imitation, 'reference' for a library sound; only a
        two-tower model treats them differently.
        """

    def embed(self, wave: np.ndarray, sr: int, role: str = "reference") -> np.ndarray:
        """Waveform (N,) at ``sr`` Hz → L2-normalised float32 embedding (dim,); at most the first
        :data:`MAX_ANALYSED_S` of the role are analysed."""
        if role not in MAX_ANALYSED_S:
            raise ValueError(f"role must be one of {tuple(MAX_ANALYSED_S)}, not {role!r}")
        wave = np.asarray(wave, dtype=np.float32)[: int(MAX_ANALYSED_S[role] * sr)]
        wave = resample(wave, sr, self.sample_rate)
        with torch.inference_mode():
            vec = self.embed_tensor(torch.from_numpy(np.ascontiguousarray(wave)), role)
        vec = vec.detach().cpu().double().numpy()
        norm = np.linalg.norm(vec)
        if not np.isfinite(norm) or norm == 0:
            raise ValueError("encoder produced a zero or non-finite embedding")
        return (vec / norm).astype(np.float32)

    def use_runtime(self, runtime: str, prepared: dict | None = None) -> str:
        """Run on another runtime where the encoder has one (the learned CNN: ONNX Runtime);
        returns the one in use. ``prepared``: what :meth:`runtime_models` gave in another process
        for the same model and runtime, so worker processes need not export or quantise again."""
        return "torch"

    def runtime_models(self) -> dict:
        """The networks of the runtime in use, as bytes per role, for :meth:`use_runtime`."""
        return {}

    def query_banks(self) -> dict[str, np.ndarray]:
        """Per block name, the embeddings of simulated imitations this model carries for the
        hubness correction against queries (:mod:`qvi_app.ranking.score`); none by default."""
        return {}

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "id": self.id, "dim": self.dim,
                "sample_rate": self.sample_rate}
