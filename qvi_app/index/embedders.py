"""Where library files are embedded, behind one interface: this process, a pool of worker processes
on this machine, or a Ray cluster. :func:`qvi_app.index.build.update_index` takes an
:class:`Embedder` and never asks which; each returns :func:`~qvi_app.index.workers.embed_file`
results in the order of the paths it is given, so the index is the same whichever ran.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Protocol

from qvi_app.errors import QviError
from qvi_app.index.workers import default_workers, embed_files

#: Where files are embedded: worker processes on this machine, or a Ray cluster.
ENGINES = ("local", "ray")
#: Below this many files to embed, runtime 'auto' keeps torch: making an ONNX Runtime session
#: (export, check against torch) takes about 0.4 s per process, more than it saves on a few files.
ONNX_MIN_FILES = 50


class Embedder(Protocol):
    def embed(self, paths: Iterable[Path], n_files: int) -> Iterator[tuple]:
        """``embed_file`` results for ``paths``, in order. ``n_files``: about how many paths will
        come (it sizes the pool and picks the runtime); ``paths`` may be a lazy iterator."""


def resolve_runtime(runtime: str, n_files: int) -> str:
    """'auto' stays torch for fewer than :data:`ONNX_MIN_FILES` files (exporting costs more than
    it saves); the encoder falls back to torch by itself where ONNX Runtime is missing."""
    return "torch" if runtime == "auto" and n_files < ONNX_MIN_FILES else runtime


@dataclass(frozen=True)
class LocalEmbedder:
    """This machine: in process for a few files, else ``workers`` processes (default one per core)."""
    encoder: object
    workers: int | None = None
    runtime: str = "auto"

    def embed(self, paths: Iterable[Path], n_files: int) -> Iterator[tuple]:
        workers = self.workers if self.workers is not None else default_workers(n_files)
        return embed_files(self.encoder, paths, workers, runtime=resolve_runtime(self.runtime, n_files))


@dataclass(frozen=True)
class RayEmbedder:
    """A Ray cluster (:mod:`qvi_app.index.ray_engine`): ``actors`` encoders (default one per
    cluster CPU) reading the files from a path every node sees. Connects when asked to embed, so
    an unreachable address is reported before any file is read."""
    encoder: object
    address: str | None = None
    actors: int | None = None
    runtime: str = "auto"

    def embed(self, paths: Iterable[Path], n_files: int) -> Iterator[tuple]:
        from qvi_app.index.ray_engine import connect, embed_files_ray

        connect(self.address)
        return embed_files_ray(self.encoder, paths, self.actors, runtime=resolve_runtime(self.runtime, n_files))


def make_embedder(engine: str, encoder, *, workers: int | None = None, ray_address: str | None = None,
                  runtime: str = "auto") -> Embedder:
    """The embedder an ``--engine`` name stands for; ``workers`` are processes or Ray actors."""
    if engine == "local":
        return LocalEmbedder(encoder, workers, runtime)
    if engine == "ray":
        return RayEmbedder(encoder, ray_address, workers, runtime)
    raise QviError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "ONNX_MIN_FILES", "Embedder", "LocalEmbedder", "RayEmbedder", "make_embedder",
           "resolve_runtime"]
