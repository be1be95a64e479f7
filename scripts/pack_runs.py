"""Carry many training runs back from a machine whose return is small (the GPU machine lent to a
session gives back at most 8 files and 64 MB; one run's checkpoint is 27 MB).

A fine-tuning run changes the weights it trains by a little, and the runs of one recipe start
from the same weights (their saved config says which: the starting checkpoint and the head's
seed). So each run is packed as the difference from that start, quantised per output row to
``bits`` bits and compressed: 4.0 MB per train-sfx run at 6 bits, 1.3% of each weight's change
(docs/TRAINING.md rows 48, 49 and 54 came back this way). ``unpack`` rebuilds the start from the
same config and writes ordinary checkpoints, with the run's training record and split, so
``qvi evaluate``, ``qvi soup`` and every encoder read them as they read the originals.

    python scripts/pack_runs.py pack OUT_DIR RUN.pt [RUN.pt ...] [--bits 6] [--files 8]
    python scripts/pack_runs.py unpack PACK_DIR OUT_DIR

A pack file holds a JSON header (each run's name, byte length and metadata) and the runs' lzma
streams; each stream is an ``np.savez`` of int8 codes and float32 row scales, read with
``allow_pickle=False``: nothing in a pack can run code.
"""

from __future__ import annotations

import argparse
import io
import json
import lzma
import math
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qvi_app.encoders.checkpoint import load_checkpoint  # noqa: E402
from qvi_app.encoders.model import save_model  # noqa: E402
from qvi_app.training.config import TrainConfig  # noqa: E402
from qvi_app.training.loop import starting_model  # noqa: E402
from qvi_app.training.soup import head_start  # noqa: E402

#: What a rebuilt checkpoint keeps of the original besides its weights.
KEPT = ("training", "split", "provenance")


def start_of(training: dict):
    """The model a run started from, rebuilt from its saved training config."""
    cfg = TrainConfig.from_dict(training["config"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(head_start({"training": training}))
        return starting_model(cfg)[0]


def encode(run: Path, bits: int) -> tuple[dict, bytes]:
    ck = load_checkpoint(run)
    start = start_of(ck["training"]).network.state_dict()
    levels = 2 ** (bits - 1) - 1
    arrays = {}
    for key, value in ck["state_dict"].items():
        if not value.is_floating_point():
            continue
        change = (value.float() - start[key].float()).reshape(value.shape[0] if value.ndim else 1, -1).numpy()
        if not change.any():
            continue                                  # frozen: rebuilt from the start as it is
        scale = np.abs(change).max(axis=1, keepdims=True) / levels
        scale[scale == 0] = 1.0
        arrays[f"{key}|q"] = np.round(change / scale).astype(np.int8)
        arrays[f"{key}|s"] = scale.astype(np.float32)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    meta = {"name": run.stem, "version": ck["version"], **{k: ck.get(k) for k in KEPT}}
    return meta, lzma.compress(buf.getvalue(), preset=6)


def pack(out_dir: Path, runs: list[Path], bits: int = 6, files: int = 8) -> list[Path]:
    if not 2 <= bits <= 8:
        raise ValueError("bits must be 2 to 8")
    out_dir.mkdir(parents=True, exist_ok=True)
    encoded = []
    for run in runs:
        encoded.append(encode(run, bits))
        print(f"packed {run.name}: {len(encoded[-1][1]) / 1e6:.1f} MB", flush=True)
    per_file = max(1, math.ceil(len(encoded) / files))
    written = []
    for i in range(0, len(encoded), per_file):
        group = encoded[i:i + per_file]
        header = json.dumps([{**meta, "bytes": len(blob)} for meta, blob in group]).encode()
        path = out_dir / f"runs{i // per_file}.pack"
        with open(path, "wb") as fh:
            fh.write(len(header).to_bytes(4, "little"))
            fh.write(header)
            for _, blob in group:
                fh.write(blob)
        written.append(path)
    return written


def unpack(pack_dir: Path, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(pack_dir.glob("runs*.pack")):
        raw = path.read_bytes()
        n = int.from_bytes(raw[:4], "little")
        pos = 4 + n
        for meta in json.loads(raw[4:pos]):
            codes = np.load(io.BytesIO(lzma.decompress(raw[pos:pos + meta["bytes"]])), allow_pickle=False)
            pos += meta["bytes"]
            model = start_of(meta["training"])
            state = model.network.state_dict()
            for key in {name.split("|")[0] for name in codes.files}:
                change = codes[f"{key}|q"].astype(np.float32) * codes[f"{key}|s"]
                state[key] = state[key] + torch.from_numpy(change).reshape(state[key].shape).to(state[key].dtype)
            model.network.load_state_dict(state)
            out = out_dir / f"{meta['name']}.pt"
            save_model(out, model, meta["version"], **{k: meta[k] for k in KEPT if meta.get(k) is not None})
            written.append(out)
            print(f"rebuilt {out}", flush=True)
    return written


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("out", type=Path)
    p.add_argument("runs", type=Path, nargs="+")
    p.add_argument("--bits", type=int, default=6)
    p.add_argument("--files", type=int, default=8, help="at most this many pack files")
    u = sub.add_parser("unpack")
    u.add_argument("packs", type=Path)
    u.add_argument("out", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        pack(a.out, a.runs, a.bits, a.files)
    else:
        unpack(a.packs, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
