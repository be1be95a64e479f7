"""scripts/pack_runs.py: training runs packed as quantised differences from their shared start,
rebuilt here into checkpoints that load, embed and soup as the originals do. Two real one-epoch
runs on twelve demo sounds: one with a shared head (``head_seed=0``), one whose head came from
its ``--seed`` (the default), so both ways a start is drawn are rebuilt."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from qvi_app.cli import main as qvi
from qvi_app.encoders import load_encoder
from qvi_app.encoders.checkpoint import load_checkpoint
from qvi_app.paths import REPO_ROOT
from test_soup import TINY, tiny_library  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow
SCRIPT = REPO_ROOT / "scripts" / "pack_runs.py"


def _script():
    spec = importlib.util.spec_from_file_location("pack_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tiny_library, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("packruns")
    shared, own = out / "shared.pt", out / "own.pt"
    assert qvi(["train", str(tiny_library), "--out", str(shared), "--seed", "1", "--set", "head_seed=0", *TINY]) == 0
    assert qvi(["train", str(tiny_library), "--out", str(own), "--seed", "2", *TINY]) == 0
    return [shared, own]


def test_packed_runs_come_back_as_the_checkpoints_they_were(runs, tmp_path, tiny_library):  # noqa: F811
    packs, rebuilt = tmp_path / "packs", tmp_path / "rebuilt"
    p = subprocess.run([sys.executable, str(SCRIPT), "pack", str(packs), *map(str, runs), "--bits", "8",
                        "--files", "1"], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert [f.name for f in packs.iterdir()] == ["runs0.pack"]            # --files 1: one file holds both
    assert sum(f.stat().st_size for f in packs.iterdir()) < 0.5 * sum(r.stat().st_size for r in runs)
    p = subprocess.run([sys.executable, str(SCRIPT), "unpack", str(packs), str(rebuilt)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr

    probe = np.sin(2 * np.pi * 330 * np.arange(22050) / 22050).astype(np.float32)
    moved = []
    for run in runs:
        back = rebuilt / run.name
        a, b = load_checkpoint(run), load_checkpoint(back)
        same = lambda x: json.dumps(x, sort_keys=True, default=list)              # tuples come back as lists
        assert same(b["training"]) == same(a["training"]) and b["split"] == a["split"]
        assert b["settings"] == a["settings"]
        start = _script().start_of(a["training"]).network.state_dict()
        for key, value in a["state_dict"].items():
            change = (value.float() - start[key].float()).abs()
            moved.append(float(change.max()))
            # 8 bits: each weight within half a step (1/254 of its row's largest change) of the original
            gap = (value.float() - b["state_dict"][key].float()).abs()
            assert float(gap.max()) <= float(change.max()) / 254 + 1e-7, key
        e_a, e_b = load_encoder("cnn", run), load_encoder("cnn", back)
        assert float(np.dot(e_a.embed(probe, 22050), e_b.embed(probe, 22050))) > 0.9999
    assert max(moved) > 1e-4                                              # training did move the weights

    # the shared-head run and a third run of its recipe still make a soup after the trip
    third = tmp_path / "third.pt"
    assert qvi(["train", str(tiny_library), "--out", str(third), "--seed", "3", "--set", "head_seed=0", *TINY]) == 0
    assert qvi(["soup", str(tmp_path / "soup.pt"), str(rebuilt / runs[0].name), str(third)]) == 0


def test_a_pack_holds_no_code(runs, tmp_path):
    module = _script()
    [path] = module.pack(tmp_path / "p", runs[:1], bits=6, files=8)
    raw = path.read_bytes()
    assert b"pickle" not in raw and raw[4:5] == b"["                           # a JSON header, then lzma streams
    with pytest.raises(ValueError):
        module.pack(tmp_path / "q", runs[:1], bits=9)
    assert torch.is_tensor(load_checkpoint(runs[0])["state_dict"]["head.fc1.weight"])


def test_parallel_runs_train_side_by_side_and_pack(tiny_library, tmp_path):  # noqa: F811
    script = REPO_ROOT / "scripts" / "parallel_runs.sh"
    p = subprocess.run(["bash", str(script), str(tiny_library), str(tmp_path / "ab"), "120", "4 5", *TINY],
                       capture_output=True, text=True, env={**os.environ, "PYTHON": sys.executable})
    assert p.returncode == 0, p.stderr + p.stdout
    assert sorted(f.name for f in (tmp_path / "ab" / "runs").glob("*.pt")) == ["s4.pt", "s5.pt"]
    assert "packed s4.pt" in p.stdout and (tmp_path / "ab" / "packs" / "runs0.pack").is_file()
    configs = [load_checkpoint(tmp_path / "ab" / "runs" / f"s{s}.pt")["training"]["config"] for s in (4, 5)]
    assert [c["seed"] for c in configs] == [4, 5] and {c["head_seed"] for c in configs} == {0}
