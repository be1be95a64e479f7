"""Embedding files in parallel: worker processes (one encoder each, one torch thread each) and
this process, which embeds files too while the pool is busy.

Results come back in submission order, with a bounded number in flight, so the caller can
record each as it arrives and stop early (cancel) without waiting for the whole library.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator

from qvi_app.audio.quiet import unredirected
from qvi_app.errors import AudioError

#: Below this many files to embed, starting processes costs more than it saves.
PARALLEL_MIN_FILES = 200

_encoder = None


def default_workers(n_files: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return 1 if n_files < PARALLEL_MIN_FILES else max(1, min(cores, 8))


def embed_file(encoder, path: Path):
    """('ok', vector, duration, sample_rate, the file's own FileTags) or ('skip', reason). The
    tags are read here, on whichever worker embeds the file (0.3 ms a file), not on the
    indexing process, which also hashes every file and embeds its share."""
    from qvi_app.audio import isolate_sound, load_audio
    from qvi_app.audio.tags import file_tags

    try:
        wave, sr = load_audio(path)
        return "ok", encoder.embed(isolate_sound(wave, sr), sr), len(wave) / sr, sr, file_tags(path)
    except AudioError as exc:
        return "skip", exc.reason
    except OSError as exc:
        return "skip", f"cannot read ({exc.strerror or exc})"
    except (ValueError, RuntimeError) as exc:
        return "skip", f"cannot embed ({exc})"


def _init(name: str, checkpoint, parent: int, runtime: str, handoff) -> None:
    """Load the model, then take the parent's prepared runtime networks from ``handoff`` (the
    parent makes them while this process imports torch)."""
    import torch

    from qvi_app.encoders import load_encoder

    global _encoder
    _die_with(parent)
    torch.set_num_threads(1)
    _encoder = load_encoder(name, checkpoint)
    prepared = handoff.get()
    if prepared == _NO_RUNTIME:          # the parent could not make it, and raises that itself
        runtime, prepared = "torch", None
    _encoder.use_runtime(runtime, prepared)


def _die_with(parent: int) -> None:
    """End this worker when the process that started it ends, even by kill -9 (workers of a
    killed qvi index lived on at about 700 MB each). Linux: the kernel's parent-death signal;
    elsewhere, and as a back-up, a thread that checks the parent every half second."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL("libc.so.6").prctl(1, signal.SIGKILL)        # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch():
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()
    if os.getppid() != parent:              # the parent died before the signal was armed
        os._exit(1)


def _work(path: str):
    return embed_file(_encoder, Path(path))


def prepared_runtime(encoder, runtime: str) -> dict | None:
    """The runtime's networks made once here, for every worker (:meth:`Encoder.use_runtime`):
    int8 quantising took about 6 s per process, and two workers calibrating at once on 2 cores
    made a 2-process int8 run slower than a 1-process one (98x against 149x real time)."""
    if runtime == "torch":
        return None
    try:
        used = encoder.use_runtime(runtime)
        return encoder.runtime_models() if used != "torch" else None
    finally:
        encoder.use_runtime("torch")


def embed_files(encoder, paths: Iterable[Path], workers: int, runtime: str = "torch") -> Iterator[tuple]:
    """Yield :func:`embed_file` results for ``paths`` in order, on ``workers`` processes, the
    network run by ``runtime`` (:meth:`Encoder.use_runtime`; in process only while this runs).

    This process is one of the ``workers``: it embeds a file itself whenever the pool has
    :data:`IN_FLIGHT` files per process queued. Spawned processes spend about 2 s importing torch
    and loading the model before their first file; this one has both already and works through
    those seconds (demo library, 2 processes: 12.9 -> 11.3 s), and makes the runtime's networks while
    they start (-> 10.9 s; 154-165x real time, docs/BENCHMARKS.md)."""
    paths = iter(paths)
    # The files still to embed are known only as they come (an update hashes each and keeps
    # those it already has): the first few decide whether worker processes are worth starting.
    first = list(itertools.islice(paths, IN_FLIGHT * max(workers - 1, 1)))
    if workers <= 1 or len(first) < workers - 1:
        # Fewer files than processes to start. Each process started also takes one handover of
        # the runtime below: with none started (every touched file found by its content), the
        # handovers were never read and the process could not exit.
        with _in_process(encoder, runtime, None):
            for p in itertools.chain(first, paths):
                yield embed_file(encoder, p)
        return
    ctx = mp.get_context("spawn")            # fork after torch has started threads can deadlock
    handoff = ctx.Queue()
    # What a worker does not take is not needed: the interpreter must not wait at exit to send it.
    handoff.cancel_join_thread()
    with ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=_init,
                             initargs=(encoder.name, getattr(encoder, "checkpoint_path", None), os.getpid(),
                                       runtime, handoff)) as pool:
        pending: deque = deque()             # futures and this process's own results, in path order
        # The first files start the workers (one each, submitted at once, so every worker starts);
        # they import torch while this process makes the runtime's networks (ONNX export 0.4 s,
        # int8 quantising about 6 s) and hands them over.
        for p in first:
            with unredirected():             # a submit may start a worker: it inherits stderr
                pending.append(pool.submit(_work, str(p)))
        try:
            prepared = prepared_runtime(encoder, runtime)
        except BaseException:
            for x in pending:
                x.cancel()
            prepared = _NO_RUNTIME
            raise
        finally:
            for _ in range(workers - 1):
                handoff.put(prepared)
        with _in_process(encoder, runtime, prepared, threads=1):
            yield from _in_order(pool, encoder, paths, pending, workers)


def _in_order(pool, encoder, paths, pending: deque, workers: int) -> Iterator[tuple]:
    """Results in path order: each file goes to the pool while it has fewer than IN_FLIGHT per
    worker queued, else is embedded here."""
    try:
        for p in paths:
            queued = sum(isinstance(x, Future) and not x.done() for x in pending)
            if queued < IN_FLIGHT * (workers - 1):
                with unredirected():
                    pending.append(pool.submit(_work, str(p)))
            else:
                pending.append(embed_file(encoder, p))
            while pending and (not isinstance(pending[0], Future) or pending[0].done()
                               or len(pending) > MAX_PENDING * workers):
                yield _result(pending.popleft())
        while pending:
            yield _result(pending.popleft())
    finally:
        for x in pending:
            if isinstance(x, Future):
                x.cancel()


#: What workers are handed when this process could not make the runtime (they then idle on torch
#: until the pool closes, instead of failing to start with a traceback of their own).
_NO_RUNTIME = "no runtime"
#: Files queued per worker process; more are embedded here.
IN_FLIGHT = 4
#: Results held back per process while an earlier file is still being embedded elsewhere.
MAX_PENDING = 16


def _result(x):
    return x.result() if isinstance(x, Future) else x


@contextlib.contextmanager
def _in_process(encoder, runtime: str, prepared: dict | None, threads: int | None = None):
    """The encoder on ``runtime`` in this process (``threads`` torch threads) for a while."""
    import torch

    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        encoder.use_runtime(runtime, prepared)
        yield
    finally:
        encoder.use_runtime("torch")
        torch.set_num_threads(before)
