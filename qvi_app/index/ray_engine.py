"""Embedding files on a Ray cluster (``qvi index --engine ray``): the same results as the local
worker pool, from as many machines as the cluster has.

Each cluster CPU gets one actor that loads the encoder once (one torch thread) and embeds the
files it is sent; the driver keeps a bounded number of files in flight and yields results in
submission order, so ``update_index`` records each as it arrives (resumable, cancellable) exactly
as with local workers. Files and the model checkpoint are read by path on the workers: the
library and the model must be on a file system every node sees at the same path (a farm's shared
storage). The driver still hashes each file and writes the index; docs/SCALING.md measures where
that becomes the limit.
"""

from __future__ import annotations

import socket
from collections import deque
from pathlib import Path
from typing import Iterable, Iterator

from qvi_app.errors import QviError
from qvi_app.index.workers import prepared_runtime

#: Files in flight per actor: enough to hide the round trip, few enough to cancel quickly.
IN_FLIGHT_PER_ACTOR = 4


def _ray():
    try:
        import ray
    except ImportError:
        raise QviError("the ray engine needs Ray: .venv/bin/pip install 'ray==2.60.0' (or pip install -e '.[cluster]')") from None
    return ray


class _Embedder:
    """One encoder on one CPU of the cluster."""

    def __init__(self, name: str, checkpoint, runtime: str = "torch", prepared: dict | None = None):
        import torch

        from qvi_app.encoders import load_encoder

        torch.set_num_threads(1)
        self.encoder = load_encoder(name, checkpoint)
        self.encoder.use_runtime(runtime, prepared)

    def embed(self, path: str):
        from qvi_app.index.workers import embed_file

        return embed_file(self.encoder, Path(path))


def connect(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the cluster at ``address`` ("auto": the one this machine belongs to), or start a
    local one (``num_cpus``) when there is none; a connection that fails is one line."""
    ray = _ray()
    if ray.is_initialized():
        return
    if address and address != "auto":
        _reachable(address)
    try:
        ray.init(address=address, num_cpus=None if address else num_cpus, include_dashboard=False,
                 log_to_driver=False, logging_level="ERROR")
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise QviError(f"cannot reach the Ray cluster at {address or 'a new local instance'}: {exc}") from None


def _reachable(address: str, timeout_s: float = 3.0) -> None:
    """Refuse an address whose head does not answer at once: Ray itself retries for minutes."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s).close()
    except (OSError, ValueError) as exc:
        raise QviError(f"cannot reach the Ray cluster at {address} ({getattr(exc, 'strerror', None) or exc}); "
                       "start it with `ray start --head` or check HOST:PORT") from None


def embed_files_ray(encoder, paths: Iterable[Path], actors: int | None = None, runtime: str = "torch"
                    ) -> Iterator[tuple]:
    """Yield :func:`~qvi_app.index.workers.embed_file` results for ``paths`` in order, from
    ``actors`` encoders on the cluster (default: one per cluster CPU)."""
    ray = _ray()
    if not ray.is_initialized():
        connect()
    n = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    remote = ray.remote(num_cpus=1)(_Embedder)
    checkpoint = getattr(encoder, "checkpoint_path", None)
    prepared = ray.put(prepared_runtime(encoder, runtime))           # made once on the driver, shared
    pool = [remote.remote(encoder.name, str(checkpoint) if checkpoint else None, runtime, prepared) for _ in range(n)]
    pending: deque = deque()
    try:
        for k, p in enumerate(paths):
            pending.append(pool[k % n].embed.remote(str(p)))
            if len(pending) >= IN_FLIGHT_PER_ACTOR * n:
                yield ray.get(pending.popleft())
        while pending:
            yield ray.get(pending.popleft())
    finally:                                        # killing the actors drops what they still had queued
        for actor in pool:
            ray.kill(actor)


__all__ = ["connect", "embed_files_ray"]
